// The prefill matmul on FP8 weights (--quantization fp8): y = x W^T with W FP8 E4M3 [n][k] and a
// scale per row, x fp32 quantised per token to E4M3 at run time (dynamic per-token scales, as vLLM
// and SGLang do), an FP8 x FP8 tensor-core GEMM through cuBLASLt with fp32 accumulation and output.
// Both scales are applied inside the GEMM where cuBLASLt offers outer-vector scaling for the shape
// (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F: a scale per row of W and per token; off with
// SHARDLM_CUDA_FP8_GEMM_SCALES=0), else by an epilogue kernel over the output. Several matrices
// over one input (Q/K/V, gate/up) share one quantisation of it (quantize_input + matmul_quantized).
// Where cuBLASLt offers no FP8 algorithm for a shape (k not a multiple of 16, say), the weights are
// dequantised to BF16 into scratch and the BF16 GEMM (gemm.h) runs instead. CPU reference: the FP8
// tests' dequantise-then-fp64 product.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "backend/cuda/gemm.h"

namespace shardlm::cuda {

class Fp8Gemm {
 public:
  // bf16: the BF16 GEMM on the same stream, for the fallback.
  Fp8Gemm(cudaStream_t stream, Gemm& bf16);
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // y[t][j] = w_scale[j] * sum_i w[j][i] * x[t][i]; w: [n][k] E4M3 bytes; w_scale: [n];
  // x: [n_tokens][k] fp32; y: [n_tokens][n] fp32. Scratch grows (after a sync) for larger inputs.
  void matmul(const uint8_t* w, const float* w_scale, int64_t k, int64_t n, const float* x,
              int64_t n_tokens, float* y);
  // The same in two parts, for several matrices over one input: quantise x once, then each
  // product over it (only for shapes lt_supports).
  void quantize_input(const float* x, int64_t n_tokens, int64_t k);
  // With scale_output false the epilogue is skipped: y holds the raw product unless the GEMM
  // applies the scales itself. Returns whether y holds the scaled product.
  bool matmul_quantized(const uint8_t* w, const float* w_scale, int64_t k, int64_t n,
                        int64_t n_tokens, float* y, bool scale_output = true);
  // The quantised input's buffers for n_tokens x k (grown as quantize_input grows them), for a
  // kernel that writes the codes and per-token scales itself (a norm or SiLU·up fused with the
  // quantisation); matmul_quantized then reads them.
  struct Input {
    uint8_t* q;    // [n_tokens][k] E4M3
    float* scale;  // [n_tokens]
  };
  Input input_buffers(int64_t n_tokens, int64_t k);
  // The per-token scales of the last quantised input.
  const float* input_scales() const { return x_scale_; }
  // Sizes the quantised-input scratch for n_tokens x k up front, so that steps captured into CUDA
  // graphs never see it move.
  void reserve_inputs(int64_t n_tokens, int64_t k);
  // Whether cuBLASLt has an FP8 algorithm for this shape (false: matmul takes the fallback).
  bool lt_supports(int64_t k, int64_t n, int64_t n_tokens);
  // Whether that algorithm applies both scales itself (outer-vector scaling).
  bool scales_in_gemm(int64_t k, int64_t n, int64_t n_tokens);

 private:
  struct Plan {
    bool ok = false;
    bool scales_in_gemm = false;  // outer-vector scales (else the epilogue kernel)
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  const Plan& plan(int64_t k, int64_t n, int64_t n_tokens);
  Plan make_plan(int64_t k, int64_t n, int64_t n_tokens, bool scales_in_gemm);
  static void destroy(Plan& p);

  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;
  cudaStream_t stream_;
  Gemm& bf16_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Plan> plans_;
  bool scales_in_gemm_ = true;  // SHARDLM_CUDA_FP8_GEMM_SCALES
  uint8_t* x_q_ = nullptr;      // [n_tokens][k] E4M3
  size_t x_q_capacity_ = 0;
  float* x_scale_ = nullptr;  // [n_tokens]
  size_t x_scale_capacity_ = 0;
  uint16_t* bf16_scratch_ = nullptr;  // the fallback's dequantised weights, then the bf16 input
  size_t bf16_capacity_ = 0;
};

}  // namespace shardlm::cuda
