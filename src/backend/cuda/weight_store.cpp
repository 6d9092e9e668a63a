// WeightStore: host-side conversion of every weight type to BF16 and the uploads.
#include "backend/cuda/weight_store.h"

#include <algorithm>
#include <vector>

#include "backend/cpu/quant.h"
#include "backend/cuda/cuda_check.h"
#include "core/error.h"
#include "core/fp16.h"

namespace shardlm::cuda {

WeightStore::~WeightStore() {
  for (auto& [host, m] : matrices_) cudaFree(m.dev);
  for (auto& [host, v] : vectors_) cudaFree(v.dev);
}

void WeightStore::add_matrix(const TensorView& w) {
  if (!w.data) fail("internal: weight '{}' has no data", w.name);
  const int64_t cols = w.ne[0], rows = w.rows();
  if (auto it = matrices_.find(w.data); it != matrices_.end()) {
    const Matrix& old = it->second;
    // A view of the first rows of a registered matrix (a tensor-parallel rank's slice of the tied
    // embedding is the table's first rows on rank 0) shares its copy.
    if (covers(old, w)) return;
    cudaFree(old.dev);  // a larger view of the same rows, or a new tensor at a freed address
    bytes_ -= static_cast<size_t>(old.cols * old.rows) * sizeof(uint16_t);
    matrices_.erase(it);
  }
  Matrix m{nullptr, cols, rows, w.dtype};
  const size_t n = static_cast<size_t>(cols * rows);
  SHARDLM_CUDA_CHECK(cudaMalloc(&m.dev, n * sizeof(uint16_t)));
  if (w.dtype == DType::BF16) {  // already the device format: one copy, no conversion
    SHARDLM_CUDA_CHECK(cudaMemcpy(m.dev, w.data, n * sizeof(uint16_t), cudaMemcpyHostToDevice));
    matrices_.emplace(w.data, m);
    bytes_ += n * sizeof(uint16_t);
    return;
  }
  // Row chunks of about 16M elements keep the host staging small for large embeddings.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(cols, 1));
  std::vector<float> row(static_cast<size_t>(cols));
  std::vector<uint16_t> staged(static_cast<size_t>(std::min(chunk, rows) * cols));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t nr = std::min(chunk, rows - r0);
    for (int64_t r = 0; r < nr; ++r) {
      cpu::dequantize_row(w.dtype, w.row(r0 + r), row.data(), cols);
      uint16_t* dst = staged.data() + r * cols;
      for (int64_t i = 0; i < cols; ++i) dst[i] = fp32_to_bf16(row[static_cast<size_t>(i)]);
    }
    SHARDLM_CUDA_CHECK(cudaMemcpy(m.dev + r0 * cols, staged.data(),
                                  static_cast<size_t>(nr * cols) * sizeof(uint16_t),
                                  cudaMemcpyHostToDevice));
  }
  matrices_.emplace(w.data, m);
  bytes_ += n * sizeof(uint16_t);
}

void WeightStore::add_vector(const float* host, int64_t n) {
  if (!host) return;
  if (auto it = vectors_.find(host); it != vectors_.end()) {
    if (it->second.n == n) return;
    cudaFree(it->second.dev);
    bytes_ -= static_cast<size_t>(it->second.n) * sizeof(float);
    vectors_.erase(it);
  }
  float* dev = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&dev, static_cast<size_t>(n) * sizeof(float)));
  SHARDLM_CUDA_CHECK(
      cudaMemcpy(dev, host, static_cast<size_t>(n) * sizeof(float), cudaMemcpyHostToDevice));
  vectors_.emplace(host, Vector{dev, n});
  bytes_ += static_cast<size_t>(n) * sizeof(float);
}

bool WeightStore::covers(const Matrix& m, const TensorView& w) {
  return m.cols == w.ne[0] && m.dtype == w.dtype && m.rows >= w.rows();
}

const uint16_t* WeightStore::matrix(const TensorView& w) const {
  auto it = matrices_.find(w.data);
  if (it == matrices_.end() || !covers(it->second, w)) {
    fail("internal: weight '{}' {} is not on the GPU; the backend's prepare_weights must run first",
         w.name, w.shape_str());
  }
  return it->second.dev;
}

const float* WeightStore::vector(const float* p) const {
  if (auto it = vectors_.find(p); it != vectors_.end()) return it->second.dev;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) == cudaSuccess && attr.type == cudaMemoryTypeDevice) {
    return p;
  }
  cudaGetLastError();  // clear a failed query
  fail(
      "internal: a weight vector in host memory is not on the GPU; prepare_weights must run first");
}

}  // namespace shardlm::cuda
