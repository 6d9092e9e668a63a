// The CUDA backend's copies of a model's weights, keyed by the host pointers the op table passes:
// matrices (TensorView.data) as BF16 [rows][ne[0]], vectors (norms, biases) as fp32. Filled once at
// load (CudaBackend::prepare_weights); read-only afterwards. A view of a registered matrix's first
// rows (same address, fewer rows) shares its copy; a larger one at the same address replaces it.
// A registered host buffer must stay alive and unchanged while the store lives (a model's weights
// do): the store cannot see a new buffer that reuses a freed one's address with the same type and
// row length and no more rows.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <unordered_map>

#include "core/tensor.h"

namespace shardlm::cuda {

class WeightStore {
 public:
  WeightStore() = default;
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // Dequantises (CPU reference) and rounds to BF16 on the host, in row chunks, then uploads; BF16
  // rows are uploaded as they are.
  void add_matrix(const TensorView& w);
  void add_vector(const float* host, int64_t n);
  // The device copy of a registered matrix; throws Error naming the tensor when it is missing.
  const uint16_t* matrix(const TensorView& w) const;
  // The device copy of a registered vector; a pointer that is already device memory is returned
  // as it is (tests pass device vectors directly); an unregistered host pointer throws.
  const float* vector(const float* p) const;
  size_t bytes() const { return bytes_; }

 private:
  struct Matrix {
    uint16_t* dev;
    int64_t cols, rows;
    DType dtype;
  };
  struct Vector {
    float* dev;
    int64_t n;
  };
  // Whether m holds w: the same row length and type, and at least w's rows.
  static bool covers(const Matrix& m, const TensorView& w);
  std::unordered_map<const void*, Matrix> matrices_;
  std::unordered_map<const float*, Vector> vectors_;
  size_t bytes_ = 0;
};

}  // namespace shardlm::cuda
