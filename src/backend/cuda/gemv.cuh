// The matmul for decode-sized batches (up to kGemvMaxTokens tokens): y = x W^T with BF16 weights,
// fp32 activations and fp32 accumulation, one kernel and no activation conversion. A memory-bound
// pass over W: each warp reads its weight rows with 16-byte loads. CPU reference: cpu::matmul.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

inline constexpr int kGemvMaxTokens = 8;

// Whether gemv_bf16 takes this shape (k a multiple of 8, so rows stay 16-byte aligned).
inline bool gemv_fits(int64_t k, int64_t n_tokens) {
  return n_tokens >= 1 && n_tokens <= kGemvMaxTokens && k % 8 == 0;
}

// y[t][j] = sum_i w[j][i] * x[t][i]; w: [n][k] bf16 bits; x: [n_tokens][k] fp32;
// y: [n_tokens][n] fp32.
void gemv_bf16(const uint16_t* w, int64_t k, int64_t n, const float* x, int64_t n_tokens, float* y,
               cudaStream_t stream);

// Up to kGemvMaxSegments weights with the same input width k in one launch (Q/K/V, gate/up):
// y[s] = x w[s]^T, w[s]: [n[s]][k].
inline constexpr int kGemvMaxSegments = 3;
struct GemvSegments {
  const uint16_t* w[kGemvMaxSegments];
  float* y[kGemvMaxSegments];
  int64_t n[kGemvMaxSegments];
  int count;
};
// gate[t][j] = silu(x[t] . w_gate[j]) * (x[t] . w_up[j]), both rows read by one warp;
// w_gate, w_up: [n][k]; gate: [n_tokens][n].
void gemv_gate_up_silu(const uint16_t* w_gate, const uint16_t* w_up, int64_t k, int64_t n,
                       const float* x, int64_t n_tokens, float* gate, cudaStream_t stream);

void gemv_bf16_segments(const GemvSegments& segs, int64_t k, const float* x, int64_t n_tokens,
                        cudaStream_t stream);

}  // namespace shardlm::cuda
