// The linear layers of --quantization fp8 on the CUDA backend: which weights are quantised at load
// (every matrix but the token embedding and the output projection, as vLLM and SGLang keep those
// in BF16; k a multiple of 16), and the matmul dispatch for the FP8 ones: the FP8 GEMV for decode
// batches (gemv_fp8.cuh), the cuBLASLt FP8 GEMM with per-token activation scales above them
// (gemm_fp8.h). CudaBackend asks it first; it declines weights held in BF16.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemm_fp8.h"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/weight_store.h"
#include "core/tensor.h"

namespace shardlm::cuda {

// Throws Error naming the GPU when it has no FP8 tensor cores (compute capability below 8.9).
void check_fp8_device(int device);

class Fp8Linear {
 public:
  // Sized for max_tokens x max_k inputs (the quantised activations' scratch).
  Fp8Linear(cudaStream_t stream, Gemm& bf16, int64_t max_tokens, int64_t max_k);

  // Whether prepare_weights quantises w (the embedding and the output projection stay BF16).
  static bool quantises(const TensorView& w);
  // Whether a prepared view is held in FP8 (weight_store.h's fp8_parts).
  static bool is_fp8(const TensorView& w);

  // Each returns false, doing nothing, when a weight is not held in FP8 (the caller's BF16 path
  // runs); see Backend::matmul, matmul_shared_input and gate_up_silu for the contracts.
  bool matmul(const TensorView& w, const float* x, int64_t n_tokens,
              float* y);
  bool matmul_shared_input(const TensorView* const* w, float* const* ys,
                           int count, const float* x, int64_t n_tokens);
  bool gate_up_silu(const TensorView& w_gate, const TensorView& w_up,
                    const float* x, int64_t n_tokens, float* gate);
  // Backend::matmul_add: the GEMV adds in its epilogue; the GEMM's scale epilogue adds the scaled
  // product (scratch holds the raw one).
  bool matmul_add(const TensorView& w, const float* x, int64_t n_tokens, float* y, float* scratch);
  // One token, in.residual null: the norm inside the GEMV (CudaBackend::norm_in_gemv). False,
  // doing nothing, where the staged GEMV does not take the shape.
  bool norm_gemv(const Backend::NormIn& in, const TensorView* const* ws, float* const* ys,
                 int count, bool gate_up);
  // norm_gemv over ws = {Wq, Wk, Wv} with rope_store_kv in the GEMV's epilogue
  // (CudaBackend::norm_qkv_rope; every ws FP8, one token). False, doing nothing, where the staged
  // GEMV does not take the shape.
  bool norm_qkv_rope(const Backend::NormIn& in, const TensorView* const* ws, float* const* ys,
                     const GemvRope& rope);
  // Backend::norm_matmul and norm_mlp on the GEMM path with the norm (and SiLU·up) writing the
  // quantised input directly (norm_quantize_fp8, silu_mul_quantize_fp8): no fp32 rows, no
  // quantisation pass, and gate and up left unscaled for SiLU·up to scale. False, doing nothing,
  // where a matrix is not FP8, the batch takes the GEMV or cuBLASLt has no FP8 algorithm.
  bool norm_matmul(const Backend::NormIn& in, const TensorView* const* ws, float* const* ys,
                   int count);
  bool norm_mlp(const Backend::NormIn& in, const Backend::DenseMlp& m, float* y);

 private:
  // FP8 matrices of one row length on the cuBLASLt GEMM path for n_tokens (k % 4 == 0).
  bool quantized_input_fits(const TensorView* const* ws, int count, int64_t n_tokens);
  // y += m's product over the quantised input (quantize_input or a fused quantisation ran);
  // scratch: [n_tokens][n].
  void add_product(const Fp8Matrix& m, int64_t k, int64_t n, int64_t n_tokens, float* y,
                   float* scratch);

  cudaStream_t stream_;
  Fp8Gemm gemm_;
};

}  // namespace shardlm::cuda
