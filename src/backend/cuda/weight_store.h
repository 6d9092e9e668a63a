// One prepare_weights call's device copies: matrices as BF16 [rows][ne[0]] (other types
// dequantised on the host with the CPU reference, then rounded), or, for the matrices the caller
// picks, FP8 E4M3 with an fp32 scale per row (--quantization fp8) or a GGUF block type kept
// quantised (quant_layout.h: the view keeps its dtype); F8_E4M3_G128 matrices (an FP8
// checkpoint's routed experts) in the expert kernels' layout (expert_rows.cuh); vectors as fp32.
// The views it returns point into memory this object owns; it frees all of it when the last
// PreparedWeights holding it goes. Nothing is looked up by host address after the upload: a new
// host buffer at a freed one's address gets its own copy from its own prepare_weights call.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backend/weight_set.h"

namespace shardlm::cuda {

// An FP8 matrix view's parts: [rows][ne[0]] E4M3 values at view.data, then (in the same
// allocation) one fp32 scale per row.
struct Fp8Matrix {
  const uint8_t* q;
  const float* scale;
};
Fp8Matrix fp8_parts(const TensorView& view);

class WeightStore {
 public:
  // `bytes` is the backend's running total of weight bytes on the device (added to here and
  // subtracted again when the store goes).
  explicit WeightStore(std::shared_ptr<std::atomic<int64_t>> bytes) : total_(std::move(bytes)) {}
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // Uploads every entry of `set` and returns the device views, entry for entry; equal views, and
  // views of the first rows of another (same address, row length and type), share one copy. The
  // runs of set.adjacent whose members qualify (weight_set.h) lie end to end in one allocation.
  // A matrix for which `fp8_groups` answers true is held as F8_E4M3_G128 in the expert kernels'
  // layout (a routed expert quantised at load: --quantization fp8); else one for which `fp8_rows`
  // does in FP8 with a scale per row (dtype F8_E4M3, fp8_parts); else one for which
  // `keep_quantised` does stays in its GGUF block type (quant_layout.h); each only when every view
  // of the copy reads all of its rows.
  using Fp8Choice = std::function<bool(const TensorView&)>;
  struct Choices {
    Fp8Choice fp8_rows, fp8_groups, keep_quantised;
  };
  WeightSet upload(const WeightSet& set, const Choices& choices = {});
  size_t bytes() const { return bytes_; }

 private:
  // Dequantises (CPU reference) and rounds to BF16 on the host, in row chunks, then uploads; BF16
  // rows are uploaded as they are.
  uint16_t* upload_matrix(const TensorView& w);
  void upload_matrix_into(const TensorView& w, uint16_t* dev);  // dev: w.numel() BF16 values
  // w's BF16 copy in the staging buffer (grown to the largest matrix, reused: each quantisation
  // finishes before the next upload), quantised on the device (fp8_quant.cuh) as rows of row_cols
  // values with a scale each: the codes, then the scales from byte scales_at.
  uint8_t* quantised_copy(const TensorView& w, int64_t row_cols, size_t scales_at);
  // FP8 with a scale per row (fp8_parts).
  uint8_t* upload_fp8_matrix(const TensorView& w);
  // An FP8 checkpoint's F8_E4M3 host view (codes, then row scales: core/fp8.h) copied as it is.
  uint8_t* upload_fp8_checkpoint(const TensorView& w);
  // F8_E4M3_G128 in the expert kernels' layout (a scale per row and 128 columns: rows of 128).
  uint8_t* upload_fp8_group_matrix(const TensorView& w);
  // An F8_E4M3_G128 host matrix (core/fp8.h: each row's codes, then its scales; rows a multiple
  // of 128 wide) in the expert kernels' layout (cuda/expert_rows.cuh): every row's codes, then
  // every row's scales.
  uint8_t* upload_fp8_groups(const TensorView& w);
  // A GGUF block-quantised matrix repacked into its GPU layout (quant_layout.h) and copied.
  uint8_t* upload_quant_matrix(const TensorView& w);
  float* upload_vector(const float* host, int64_t n);
  // `bytes` (256-byte aligned). cudaMalloc maps whole 2 MiB pages, so one allocation per matrix
  // cost a third more for an MoE model's 3 MiB experts (qwen3-30b-a3b: 75 GiB held for 57 GiB of
  // BF16 weights). A copy whose own pages would waste more than 1/16 of it comes from the current
  // chunk, or from a new one (chunks double from 2 MiB to 256 MiB); the others (a dense model's
  // large matrices) get allocations of their own, so no chunk is left part-used for them.
  void* allocate(size_t bytes);

  static constexpr size_t kAlign = 256, kPage = size_t{2} << 20, kMaxChunk = size_t{256} << 20;
  std::shared_ptr<std::atomic<int64_t>> total_;
  std::vector<void*> allocations_;  // the chunks
  void* chunk_at_ = nullptr;        // the current chunk's first free byte
  size_t chunk_left_ = 0, next_chunk_ = size_t{2} << 20;
  size_t bytes_ = 0;  // the copies' bytes (bytes(), the backend's total), not the chunks' tails
  uint16_t* staging_ = nullptr;  // quantised_copy's BF16 copies
  size_t staging_elems_ = 0;
};

}  // namespace shardlm::cuda
