// The matmul for decode-sized batches (up to kGemvMaxTokens tokens): y = x W^T with BF16 weights,
// fp32 activations and fp32 accumulation, one kernel and no activation conversion. A memory-bound
// pass over W with 16-byte loads, several of them in flight per lane and row; the kernel variant
// (rows per warp, loads in flight, warps splitting a row's k) is chosen per shape. CPU reference:
// cpu::matmul.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace shardlm::cuda {

inline constexpr int kGemvMaxTokens = 8;

// Whether gemv_bf16 takes this shape (k a multiple of 8, so rows stay 16-byte aligned).
inline bool gemv_fits(int64_t k, int64_t n_tokens) {
  return n_tokens >= 1 && n_tokens <= kGemvMaxTokens && k % 8 == 0;
}

// y[t][j] = sum_i w[j][i] * x[t][i]; w: [n][k] bf16 bits; x: [n_tokens][k] fp32, 16-byte aligned;
// y: [n_tokens][n] fp32.
void gemv_bf16(const uint16_t* w, int64_t k, int64_t n, const float* x, int64_t n_tokens, float* y,
               cudaStream_t stream);

// Up to kGemvMaxSegments weights with the same input width k in one launch (Q/K/V, gate/up):
// y[s] = x w[s]^T, w[s]: [n[s]][k]; their rows are taken as one matrix of sum n[s] rows.
inline constexpr int kGemvMaxSegments = 3;
// With norm_w, x is the un-normed residual stream and the kernel multiplies by its RMSNorm
// (weight norm_w, eps norm_eps) itself: one token only (gemv_norm_fits). With accumulate,
// y[s] += the product.
struct GemvSegments {
  const uint16_t* w[kGemvMaxSegments];
  float* y[kGemvMaxSegments];
  int64_t n[kGemvMaxSegments];
  int count;
  const float* norm_w = nullptr;
  float norm_eps = 0.f;
  bool accumulate = false;
};
// Whether gemv_bf16_segments and gemv_gate_up_silu take norm_w for this shape (batch 1, x staged
// in shared memory: gemv_staged.cuh).
bool gemv_norm_fits(int64_t k, int64_t n_tokens);
void gemv_bf16_segments(const GemvSegments& segs, int64_t k, const float* x, int64_t n_tokens,
                        cudaStream_t stream);

// Rope and the KV store in the epilogue of the Q/K/V GEMV at one token (gemv_bf16_qkv_rope):
// the token's position and cache slot (device), the rotary frequencies, the layer's cache.
struct GemvRope {
  const int32_t* positions;  // [1]
  const int32_t* slots;      // [1]
  const float* inv_freq;     // [head_dim / 2]
  void* cache_k;             // [slots][K rows]: BF16 bits, or FP8 E4M3 codes with fp8_kv
  void* cache_v;
  int head_dim;
  bool neox;  // pairs (i, i + head_dim / 2), else (2i, 2i + 1)
  bool fp8_kv;
};
// One token, segs = {Wq, Wk, Wv} with norm_w: q, k, v as gemv_bf16_segments, then q and k rotated
// and k and v stored in the cache as rope_store_kv (rope.cuh) does, bit for bit, in the same
// launch. Every segment's rows even; gemv_norm_fits(k, 1).
void gemv_bf16_qkv_rope(const GemvSegments& segs, const GemvRope& rope, int64_t k, const float* x,
                        cudaStream_t stream);

// gate[t][j] = silu(x[t] . w_gate[j]) * (x[t] . w_up[j]), both rows read by one warp;
// w_gate, w_up: [n][k]; gate: [n_tokens][n].
void gemv_gate_up_silu(const uint16_t* w_gate, const uint16_t* w_up, int64_t k, int64_t n,
                       const float* x, int64_t n_tokens, float* gate, cudaStream_t stream,
                       const float* norm_w = nullptr, float norm_eps = 0.f);

// The batch-1 kernel variants the per-shape dispatch chooses from, for benchmarks (gemv_sweep):
// variant v of gemv_bf16_segments / gemv_gate_up_silu at one token, and the one the dispatch
// takes for a shape (rows: all segments' rows, or n for gate/up).
int gemv_variant_count();
std::string gemv_variant_name(int v);
int gemv_dispatch_variant(int64_t k, int64_t rows, int64_t n_tokens, bool gate_up);
void gemv_bf16_variant(int v, const GemvSegments& segs, int64_t k, const float* x,
                       cudaStream_t stream);
void gemv_gate_up_silu_variant(int v, const uint16_t* w_gate, const uint16_t* w_up, int64_t k,
                               int64_t n, const float* x, float* gate, cudaStream_t stream);

}  // namespace shardlm::cuda
