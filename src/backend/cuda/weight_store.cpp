// WeightStore: host-side conversion of every weight type to BF16 and the uploads.
#include "backend/cuda/weight_store.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>
#include <utility>

#include "backend/cpu/quant.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/quant_layout.h"
#include "backend/cuda/scratch.h"
#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::cuda {

WeightStore::~WeightStore() {
  for (void* p : allocations_) cudaFree(p);
  cudaFree(staging_);
  *total_ -= static_cast<int64_t>(bytes_);
}

Fp8Matrix fp8_parts(const TensorView& view) {
  const auto* q = static_cast<const uint8_t*>(view.data);
  return {q, reinterpret_cast<const float*>(q + fp8_scales_offset(view.numel()))};
}

void* WeightStore::allocate(size_t bytes) {
  bytes_ += bytes;
  *total_ += static_cast<int64_t>(bytes);
  bytes = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  const size_t pages = (bytes + kPage - 1) / kPage * kPage;
  if (pages - bytes <= bytes / 16) {  // its own pages waste little: an allocation of its own
    void* p = nullptr;
    SHARDLM_CUDA_CHECK(cudaMalloc(&p, bytes));
    allocations_.push_back(p);
    return p;
  }
  if (bytes > chunk_left_) {  // a new chunk (under 32 MiB a copy wastes more than 1/16 above)
    const size_t chunk = std::max(bytes, next_chunk_);
    next_chunk_ = std::min(2 * next_chunk_, kMaxChunk);
    SHARDLM_CUDA_CHECK(cudaMalloc(&chunk_at_, chunk));
    allocations_.push_back(chunk_at_);
    chunk_left_ = chunk;
  }
  void* p = chunk_at_;
  chunk_at_ = static_cast<char*>(chunk_at_) + bytes;
  chunk_left_ -= bytes;
  return p;
}

uint8_t* WeightStore::quantised_copy(const TensorView& w, int64_t row_cols, size_t scales_at) {
  // The uploads and quantisations run on the legacy stream, so growing the buffer waits for the
  // quantisation that last read it.
  uint16_t* bf16 = grow_scratch(staging_, staging_elems_, static_cast<size_t>(w.numel()), nullptr);
  upload_matrix_into(w, bf16);
  const int64_t rows = w.numel() / row_cols;
  auto* q = static_cast<uint8_t*>(allocate(scales_at + static_cast<size_t>(rows) * sizeof(float)));
  quantize_rows_fp8(bf16, row_cols, rows, q, reinterpret_cast<float*>(q + scales_at), nullptr);
  SHARDLM_CUDA_CHECK(cudaDeviceSynchronize());  // before the staging buffer is written again
  return q;
}

WeightSet WeightStore::upload(const WeightSet& set, const Choices& choices) {
  const auto chosen = [](const Fp8Choice& f, const TensorView& m) { return f && f(m); };
  // One copy per (address, row length, type) in this set, of its widest view; every view of it
  // reads its first rows from that copy. An FP8 or quantised copy serves only views of all its
  // rows (its scales follow its values: fp8_parts, quant_parts). The map lives for this call only.
  using Key = std::tuple<const void*, int64_t, DType>;
  struct Group {
    TensorView widest;
    int64_t fewest_rows;
  };
  std::map<Key, Group> groups;
  for (const TensorView& m : set.matrices) {
    if (!m.data) continue;
    auto [it, fresh] = groups.try_emplace(Key{m.data, m.ne[0], m.dtype}, Group{m, m.rows()});
    Group& g = it->second;
    if (m.rows() > g.widest.rows()) g.widest = m;
    g.fewest_rows = std::min(g.fewest_rows, m.rows());
  }
  std::map<Key, std::pair<const void*, DType>> copies;
  for (const std::vector<size_t>& run : set.adjacent) {  // Q/K/V, gate/up: end to end, in BF16
    std::vector<TensorView> members;
    int64_t rows = 0;
    for (const size_t i : run) {
      const TensorView& m = set.matrices.at(i);
      if (!m.data) break;
      const Key key{m.data, m.ne[0], m.dtype};
      const Group& g = groups.at(key);
      const bool widest = g.widest.rows() == m.rows();  // narrower views read its first rows
      if (!widest || copies.count(key) || m.ne[0] != set.matrices.at(run[0]).ne[0] ||
          chosen(choices.fp8_rows, m) || chosen(choices.fp8_groups, m) ||
          chosen(choices.keep_quantised, m)) {
        break;
      }
      members.push_back(m);
      rows += m.rows();
    }
    if (members.size() != run.size()) continue;  // not every member qualifies: left apart
    auto* dev = static_cast<uint16_t*>(allocate(static_cast<size_t>(rows * members[0].ne[0]) * 2));
    for (const TensorView& m : members) {
      upload_matrix_into(m, dev);
      copies[Key{m.data, m.ne[0], m.dtype}] = {dev, DType::BF16};
      dev += m.rows() * m.ne[0];
    }
  }
  for (const auto& [key, g] : groups) {
    if (copies.count(key)) continue;  // placed with its run
    const TensorView& w = g.widest;
    const bool whole = g.fewest_rows == w.rows();
    if (w.dtype == DType::F8_E4M3_G128) {  // routed experts of an FP8 checkpoint
      if (!whole) {                        // the kernels find the scales after all the rows' codes
        fail("internal: FP8 expert '{}' has views of {} and {} rows", w.name, g.fewest_rows,
             w.rows());
      }
      copies[key] = {upload_fp8_groups(w), DType::F8_E4M3_G128};
      continue;
    }
    if (chosen(choices.fp8_groups, w) && whole) {  // routed experts quantised at load
      copies[key] = {upload_fp8_group_matrix(w), DType::F8_E4M3_G128};
      continue;
    }
    const bool fp8 = chosen(choices.fp8_rows, w) && whole;
    const bool quant = !fp8 && chosen(choices.keep_quantised, w) && whole;
    const void* copy = quant                       ? upload_quant_matrix(w)
                       : !fp8                      ? static_cast<const void*>(upload_matrix(w))
                       : w.dtype == DType::F8_E4M3 ? upload_fp8_checkpoint(w)
                                                   : upload_fp8_matrix(w);
    copies[key] = {copy, quant ? w.dtype : fp8 ? DType::F8_E4M3 : DType::BF16};
  }
  WeightSet out;
  for (const TensorView& m : set.matrices) {
    TensorView v = m;  // an entry without data stays as it is (its shape may still be read)
    if (m.data) {
      std::tie(v.data, v.dtype) = copies.at(Key{m.data, m.ne[0], m.dtype});
      v.space = MemSpace::kDevice;
    }
    out.matrices.push_back(v);
  }
  std::map<std::pair<const float*, int64_t>, const float*> vectors;
  for (const WeightVector& h : set.vectors) {
    WeightVector v = h;
    if (h.data) {
      auto [it, fresh] = vectors.try_emplace({h.data, h.n}, nullptr);
      if (fresh) it->second = upload_vector(h.data, h.n);
      v = {it->second, h.n, MemSpace::kDevice};
    }
    out.vectors.push_back(v);
  }
  SHARDLM_CUDA_CHECK(cudaDeviceSynchronize());
  return out;
}

uint16_t* WeightStore::upload_matrix(const TensorView& w) {
  auto* dev = static_cast<uint16_t*>(allocate(static_cast<size_t>(w.numel()) * sizeof(uint16_t)));
  upload_matrix_into(w, dev);
  return dev;
}

void WeightStore::upload_matrix_into(const TensorView& w, uint16_t* dev) {
  const int64_t cols = w.ne[0], rows = w.rows();
  const size_t n = static_cast<size_t>(cols * rows);
  if (w.dtype == DType::BF16) {  // already the device format: one copy, no conversion
    SHARDLM_CUDA_CHECK(cudaMemcpy(dev, w.data, n * sizeof(uint16_t), cudaMemcpyHostToDevice));
    return;
  }
  // Row chunks of about 16M elements keep the host staging small for large embeddings.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(cols, 1));
  std::vector<float> row(static_cast<size_t>(cols));
  std::vector<uint16_t> staged(static_cast<size_t>(std::min(chunk, rows) * cols));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t nr = std::min(chunk, rows - r0);
    for (int64_t r = 0; r < nr; ++r) {
      if (w.dtype == DType::F8_E4M3) {  // an FP8 checkpoint's matrix kept in BF16: codes x scales
        dequantize_fp8_row(w, r0 + r, row.data());
      } else {
        cpu::dequantize_row(w.dtype, w.row(r0 + r), row.data(), cols);
      }
      uint16_t* dst = staged.data() + r * cols;
      for (int64_t i = 0; i < cols; ++i) dst[i] = fp32_to_bf16(row[static_cast<size_t>(i)]);
    }
    SHARDLM_CUDA_CHECK(cudaMemcpy(dev + r0 * cols, staged.data(),
                                  static_cast<size_t>(nr * cols) * sizeof(uint16_t),
                                  cudaMemcpyHostToDevice));
  }
}

uint8_t* WeightStore::upload_fp8_matrix(const TensorView& w) {
  return quantised_copy(w, w.ne[0], fp8_scales_offset(w.numel()));  // fp8_parts
}

uint8_t* WeightStore::upload_fp8_group_matrix(const TensorView& w) {
  if (w.ne[0] % kFp8GroupCols != 0) {
    fail("internal: FP8 expert '{}' is {} wide, not a multiple of {}", w.name, w.ne[0],
         kFp8GroupCols);
  }
  // Codes [rows][cols] then scales [rows][cols / 128] are the codes and row scales of the same
  // values seen as rows of 128 columns.
  return quantised_copy(w, kFp8GroupCols, static_cast<size_t>(w.numel()));
}

uint8_t* WeightStore::upload_fp8_checkpoint(const TensorView& w) {
  const size_t bytes = fp8_matrix_bytes(w.numel(), w.rows());  // the host copy has this layout
  auto* q = static_cast<uint8_t*>(allocate(bytes));
  SHARDLM_CUDA_CHECK(cudaMemcpy(q, w.data, bytes, cudaMemcpyHostToDevice));
  return q;
}

uint8_t* WeightStore::upload_fp8_groups(const TensorView& w) {
  const auto k = static_cast<size_t>(w.ne[0]), rows = static_cast<size_t>(w.rows());
  if (k % kFp8GroupCols != 0) {
    fail("internal: FP8 expert '{}' is {} wide, not a multiple of {}", w.name, k, kFp8GroupCols);
  }
  const size_t groups = k / kFp8GroupCols, scales_at = rows * k;
  std::vector<uint8_t> host(rows * (k + groups * sizeof(float)));
  for (size_t r = 0; r < rows; ++r) {  // each row's codes, then its scales (core/fp8.h)
    const uint8_t* row = w.row(static_cast<int64_t>(r));
    std::memcpy(host.data() + r * k, row, k);
    std::memcpy(host.data() + scales_at + r * groups * sizeof(float), row + k,
                groups * sizeof(float));
  }
  auto* q = static_cast<uint8_t*>(allocate(host.size()));
  SHARDLM_CUDA_CHECK(cudaMemcpy(q, host.data(), host.size(), cudaMemcpyHostToDevice));
  return q;
}

uint8_t* WeightStore::upload_quant_matrix(const TensorView& w) {
  const std::vector<uint8_t> host = repack_quant(w);
  auto* dev = static_cast<uint8_t*>(allocate(host.size()));
  SHARDLM_CUDA_CHECK(cudaMemcpy(dev, host.data(), host.size(), cudaMemcpyHostToDevice));
  return dev;
}

float* WeightStore::upload_vector(const float* host, int64_t n) {
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  auto* dev = static_cast<float*>(allocate(bytes));
  SHARDLM_CUDA_CHECK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
  return dev;
}

}  // namespace shardlm::cuda
