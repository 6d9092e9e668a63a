// Rotary position embeddings on the GPU, both pairings (RopeStyle). CPU reference: cpu::rope
// (backend/cpu/rope.cpp); angles are computed in double as there.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

// The widest head the rope kernels take (their per-block table of cos and sin).
inline constexpr int kMaxRopeHeadDim = 512;

// Rotates each head of x ([n_tokens][n_heads * head_dim] fp32) by positions[t] (device);
// inv_freq: [head_dim / 2] device. neox: pairs (i, i + d/2); else (2i, 2i + 1).
void rope(float* x, const int32_t* positions, int64_t n_tokens, int n_heads, int head_dim,
          bool neox, const float* inv_freq, cudaStream_t stream);

// rope on q ([n_tokens][n_heads * head_dim]) and k ([n_tokens][n_kv_heads * head_dim]) in place,
// then the rotated k and v ([n_tokens][kv_dim]) into cache slots[t] (device) of cache_k/cache_v
// (BF16 bits, as store_kv): the three ops of a layer in one launch. CPU reference: rope, rope,
// store_kv.
void rope_store_kv(float* q, float* k, const float* v, const int32_t* positions,
                   const int32_t* slots, int64_t n_tokens, int n_heads, int n_kv_heads,
                   int head_dim, bool neox, const float* inv_freq, uint16_t* cache_k,
                   uint16_t* cache_v, cudaStream_t stream);
// The same into an FP8 E4M3 cache (--kv-cache-dtype fp8, kv_element.cuh).
void rope_store_kv(float* q, float* k, const float* v, const int32_t* positions,
                   const int32_t* slots, int64_t n_tokens, int n_heads, int n_kv_heads,
                   int head_dim, bool neox, const float* inv_freq, uint8_t* cache_k,
                   uint8_t* cache_v, cudaStream_t stream);

}  // namespace shardlm::cuda
