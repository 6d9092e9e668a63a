// Fp8Gemm: per-token activation quantisation, one cublasLtMatmul per matmul (a plan per shape,
// made once: layouts and the heuristic's first algorithm), the scale epilogue. cuBLASLt's FP8
// GEMMs take A transposed and B not (the "TN" layout), which is how the row-major [n][k] weights
// and [n_tokens][k] inputs lie in column-major terms: A = W (k x n, used transposed), B = x^T.
#include "backend/cuda/gemm_fp8.h"

#include <spdlog/spdlog.h>

#include <climits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/scratch.h"
#include "core/env_flag.h"
#include "core/error.h"

namespace shardlm::cuda {

Fp8Gemm::Fp8Gemm(cudaStream_t stream, Gemm& bf16)
    : stream_(stream),
      bf16_(bf16),
      scales_in_gemm_(env_flag("SHARDLM_CUDA_FP8_GEMM_SCALES", true)) {
  SHARDLM_CUBLAS_CHECK(cublasLtCreate(&handle_));
  SHARDLM_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
}

Fp8Gemm::~Fp8Gemm() {
  for (auto& [shape, p] : plans_) destroy(p);
  if (handle_) cublasLtDestroy(handle_);
  cudaFree(workspace_);
  cudaFree(x_q_);
  cudaFree(x_scale_);
  cudaFree(bf16_scratch_);
}

void Fp8Gemm::destroy(Plan& p) {
  if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  if (p.a) cublasLtMatrixLayoutDestroy(p.a);
  if (p.b) cublasLtMatrixLayoutDestroy(p.b);
  if (p.c) cublasLtMatrixLayoutDestroy(p.c);
  p = Plan{};
}

Fp8Gemm::Plan Fp8Gemm::make_plan(int64_t k, int64_t n, int64_t n_tokens, bool scales_in_gemm) {
  Plan p;
  p.scales_in_gemm = scales_in_gemm;
  // FP8 operands need 16-byte aligned rows (k % 16) and int sizes.
  if (k % 16 != 0 || k > INT_MAX || n > INT_MAX || n_tokens > INT_MAX) return p;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  bool ok =
      cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)) ==
          CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)) ==
          CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, k, n, k) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, k, n_tokens, k) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, n, n_tokens, n) == CUBLAS_STATUS_SUCCESS;
  if (scales_in_gemm) {  // A = W: a scale per row of W (M = n); B = x^T: one per token (N)
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    ok = ok &&
         cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode,
                                        sizeof(mode)) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode,
                                        sizeof(mode)) == CUBLAS_STATUS_SUCCESS;
  }
  cublasLtMatmulPreference_t pref = nullptr;
  ok = ok && cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS;
  const size_t ws = kWorkspaceBytes;
  ok = ok && cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &ws, sizeof(ws)) == CUBLAS_STATUS_SUCCESS;
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  ok = ok && cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result,
                                            &found) == CUBLAS_STATUS_SUCCESS;
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (!ok || found == 0) {
    destroy(p);
    return p;
  }
  p.algo = result.algo;
  p.ok = true;
  return p;
}

const Fp8Gemm::Plan& Fp8Gemm::plan(int64_t k, int64_t n, int64_t n_tokens) {
  const auto key = std::make_tuple(k, n, n_tokens);
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    Plan made = scales_in_gemm_ ? make_plan(k, n, n_tokens, true) : Plan{};
    if (!made.ok) made = make_plan(k, n, n_tokens, false);
    it = plans_.emplace(key, made).first;
    if (!it->second.ok) {
      spdlog::debug("cuBLASLt has no FP8 GEMM for {} x {} by {} tokens: BF16 fallback", n, k,
                    n_tokens);
    }
  }
  return it->second;
}

bool Fp8Gemm::lt_supports(int64_t k, int64_t n, int64_t n_tokens) {
  return plan(k, n, n_tokens).ok;
}

bool Fp8Gemm::scales_in_gemm(int64_t k, int64_t n, int64_t n_tokens) {
  const Plan& p = plan(k, n, n_tokens);
  return p.ok && p.scales_in_gemm;
}

void Fp8Gemm::reserve_inputs(int64_t n_tokens, int64_t k) {
  grow_scratch(x_q_, x_q_capacity_, static_cast<size_t>(n_tokens * k), stream_, "FP8 GEMM");
  grow_scratch(x_scale_, x_scale_capacity_, static_cast<size_t>(n_tokens), stream_, "FP8 GEMM");
}

void Fp8Gemm::matmul(const uint8_t* w, const float* w_scale, int64_t k, int64_t n, const float* x,
                     int64_t n_tokens, float* y) {
  if (n_tokens == 0 || n == 0) return;
  const Plan& p = plan(k, n, n_tokens);
  if (!p.ok) {  // dequantise the weights, round x to BF16, BF16 GEMM
    const size_t wn = static_cast<size_t>(n * k), xn = static_cast<size_t>(n_tokens * k);
    uint16_t* s = grow_scratch(bf16_scratch_, bf16_capacity_, wn + xn, stream_, "FP8 GEMM");
    dequantize_rows_fp8(w, w_scale, k, n, s, stream_);
    to_bf16(x, n_tokens * k, s + wn, stream_);
    bf16_.bf16(s, k, n, s + wn, n_tokens, y);
    return;
  }
  quantize_input(x, n_tokens, k);
  matmul_quantized(w, w_scale, k, n, n_tokens, y);
}

Fp8Gemm::Input Fp8Gemm::input_buffers(int64_t n_tokens, int64_t k) {
  uint8_t* xq =
      grow_scratch(x_q_, x_q_capacity_, static_cast<size_t>(n_tokens * k), stream_, "FP8 GEMM");
  float* xs =
      grow_scratch(x_scale_, x_scale_capacity_, static_cast<size_t>(n_tokens), stream_, "FP8 GEMM");
  return {xq, xs};
}

void Fp8Gemm::quantize_input(const float* x, int64_t n_tokens, int64_t k) {
  const Input in = input_buffers(n_tokens, k);
  quantize_activations_fp8(x, n_tokens, k, in.q, in.scale, stream_);
}

bool Fp8Gemm::matmul_quantized(const uint8_t* w, const float* w_scale, int64_t k, int64_t n,
                               int64_t n_tokens, float* y, bool scale_output) {
  if (n_tokens == 0 || n == 0) return true;
  const Plan& p = plan(k, n, n_tokens);
  if (!p.ok)
    fail("Fp8Gemm: no FP8 GEMM for {} x {} by {} tokens (check lt_supports first)", n, k, n_tokens);
  if (p.scales_in_gemm) {  // the pointers change per matrix; the descriptor is read at the call
    SHARDLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof(w_scale)));
    SHARDLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
        p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale_, sizeof(x_scale_)));
  }
  const float alpha = 1.f, beta = 0.f;
  SHARDLM_CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, w, p.a, x_q_, p.b, &beta, y, p.c, y,
                                      p.c, &p.algo, workspace_, kWorkspaceBytes, stream_));
  if (p.scales_in_gemm) return true;
  if (scale_output) scale_fp8_product(y, n_tokens, n, x_scale_, w_scale, stream_);
  return scale_output;
}

}  // namespace shardlm::cuda
