// The decode matmul on FP8 weights (--quantization fp8): y = (x W_q^T) * scale, W_q: FP8 E4M3
// [n][k] with one fp32 scale per row (fp8_quant.cuh), x fp32, fp32 accumulation. Half the weight
// bytes of gemv_bf16 (gemv.cuh) on the same plan: 16-byte loads (16 weights), several in flight
// per lane and row, dequantised in registers, the row scale applied once to the dot product. From
// 2 tokens (gemv_fp8_mma_takes) the entry points below run the tensor-core kernel instead
// (gemv_fp8_mma.cuh), x rounded to BF16.
// CPU reference: the FP8 tests' dequantise-then-fp64 product (tests/cuda/test_cuda_fp8.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/gemv.cuh"

namespace shardlm::cuda {

// Whether the FP8 GEMV takes this shape (k a multiple of 16, so rows stay 16-byte aligned).
inline bool gemv_fp8_fits(int64_t k, int64_t n_tokens) {
  return n_tokens >= 1 && n_tokens <= kGemvMaxTokens && k % 16 == 0;
}

// Whether an FP8 GEMV of n_tokens tokens over rows k wide runs on the tensor cores
// (gemv_fp8_mma.cuh): k % 16 == 0, one token's x in a block's shared memory, and n_tokens from 2
// to 8. At one token the CUDA-core kernel (gemv_staged.cuh) keeps more bytes in flight and is
// faster (docs/benchmarks.md). SHARDLM_CUDA_FP8_GEMV_MMA (read at each call): all = from one
// token, so that a token's outputs are the same bits alone and in any batch up to 8; 0 = never.
bool gemv_fp8_mma_takes(int64_t k, int64_t n_tokens);

// Up to kGemvMaxSegments FP8 weights with the same input width k in one launch (Q/K/V):
// y[s][t][j] = scale[s][j] * sum_i w[s][j][i] * x[t][i]; w[s]: [n[s]][k] bytes; scale[s]: [n[s]].
// norm_w, norm_eps and accumulate as in GemvSegments (gemv.cuh); norm_w at one token only
// (gemv_fp8_norm_fits).
struct Fp8Segments {
  const uint8_t* w[kGemvMaxSegments];
  const float* scale[kGemvMaxSegments];
  float* y[kGemvMaxSegments];
  int64_t n[kGemvMaxSegments];
  int count;
  const float* norm_w = nullptr;
  float norm_eps = 0.f;
  bool accumulate = false;
};
// Whether the FP8 GEMV takes norm_w for this shape.
bool gemv_fp8_norm_fits(int64_t k, int64_t n_tokens);

// gemv_bf16_qkv_rope (gemv.cuh) on FP8 weights; gemv_fp8_norm_fits(k, 1).
void gemv_fp8_qkv_rope(const Fp8Segments& segs, const GemvRope& rope, int64_t k, const float* x,
                       cudaStream_t stream);

// x: [n_tokens][k] fp32, 16-byte aligned; y[s]: [n_tokens][n[s]] fp32.
void gemv_fp8_segments(const Fp8Segments& segs, int64_t k, const float* x, int64_t n_tokens,
                       cudaStream_t stream);
void gemv_fp8(const uint8_t* w, const float* scale, int64_t k, int64_t n, const float* x,
              int64_t n_tokens, float* y, cudaStream_t stream);
// gate[t][j] = silu(x[t] . w_gate[j] * s_gate[j]) * (x[t] . w_up[j] * s_up[j]); gate:
// [n_tokens][n].
void gemv_fp8_gate_up_silu(const uint8_t* w_gate, const float* s_gate, const uint8_t* w_up,
                           const float* s_up, int64_t k, int64_t n, const float* x,
                           int64_t n_tokens, float* gate, cudaStream_t stream,
                           const float* norm_w = nullptr, float norm_eps = 0.f);

}  // namespace shardlm::cuda
