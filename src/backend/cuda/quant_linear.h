// The linear layers of a GGUF model whose matrices stay block-quantised on the GPU (Q4_0, Q4_1,
// Q8_0, Q4_K, Q5_K, Q6_K: quant_layout.h): which weights prepare_weights keeps quantised, and the
// matmul dispatch for them. Batches up to kGemvMaxTokens tokens (in chunks of kGemvQuantMaxTokens)
// run the integer GEMV (gemv_quant.cuh: Q/K/V in one launch, gate/up with SiLU in one); larger
// ones dequantise the weight to BF16 tiles of up to kTileElems elements and multiply each tile
// with cuBLAS into its columns of the output. CudaBackend asks it first; it declines other
// weights. SHARDLM_CUDA_GGUF_BF16=1 dequantises every matrix to BF16 at load instead (as before),
// to compare.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv_quant.cuh"
#include "core/tensor.h"

namespace shardlm::cuda {

class QuantLinear {
 public:
  // Sized for decode inputs up to max_k wide (the activation codes' scratch).
  QuantLinear(cudaStream_t stream, Gemm& gemm, int64_t max_k);
  ~QuantLinear();
  QuantLinear(const QuantLinear&) = delete;
  QuantLinear& operator=(const QuantLinear&) = delete;

  // Whether prepare_weights keeps host weight w quantised: a block type with a GPU layout, rows a
  // multiple of 32, and a dense layer's matrix (attention Q/K/V/O, FFN gate/up/down, the token
  // embedding and the output projection: the ops that read experts and MLA weights take BF16).
  static bool keeps(const TensorView& w);
  // Whether a prepared (device) view is held quantised, and its parts.
  static bool is_quant(const TensorView& w);
  static QuantMatrix parts(const TensorView& w);

  // The BF16 tiles for matrices of up to `elems` elements (capped at kTileElems); grows only.
  static constexpr int64_t kTileElems = int64_t{32} << 20;
  void reserve_tiles(int64_t elems);

  // Batches up to this many tokens run the GEMV, in chunks of kGemvQuantMaxTokens (it reads the
  // codes once a chunk); larger ones the BF16 tiles, which write and read every weight as BF16 in
  // each step. On an H200 at the 8B shape in Q4_K, 16 tokens took 18.1 ms a decode step through
  // the tiles (BF16 weights: 6.2 ms).
  static constexpr int64_t kGemvMaxTokens = 32;

  // Decode batches: each returns false, doing nothing, when a weight is not held quantised or the
  // batch is over kGemvMaxTokens (the caller's GEMM path runs, calling gemm() below).
  bool matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y);
  bool matmul_shared_input(const TensorView* const* ws, float* const* ys, int count, const float* x,
                           int64_t n_tokens);
  // gate = silu(x w_gate^T) * (x w_up^T); up is scratch of the same size.
  bool gate_up_silu(const TensorView& w_gate, const TensorView& w_up, const float* x,
                    int64_t n_tokens, float* gate, float* up);
  // Any batch: y = x W^T with x already in BF16 ([n_tokens][k]), tile by tile.
  void gemm(const TensorView& w, const uint16_t* x_bf16, int64_t n_tokens, float* y);
  // out[i] = row ids[i] of a quantised table, as fp32.
  void embedding(const TensorView& table, const int32_t* ids, int64_t n, float* out);

 private:
  void check_width(int64_t k) const;

  cudaStream_t stream_;
  Gemm& gemm_;
  int64_t max_k_;
  QuantActs acts_{};
  uint16_t* tile_ = nullptr;
  int64_t tile_elems_ = 0;
};

}  // namespace shardlm::cuda
