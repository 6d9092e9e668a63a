// Rotary position embeddings on the GPU, both pairings (RopeStyle). CPU reference: cpu::rope
// (backend/cpu/rope.cpp); angles are computed in double as there.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

// Rotates each head of x ([n_tokens][n_heads * head_dim] fp32) by positions[t] (device);
// inv_freq: [head_dim / 2] device. neox: pairs (i, i + d/2); else (2i, 2i + 1).
void rope(float* x, const int32_t* positions, int64_t n_tokens, int n_heads, int head_dim,
          bool neox, const float* inv_freq, cudaStream_t stream);

}  // namespace shardlm::cuda
