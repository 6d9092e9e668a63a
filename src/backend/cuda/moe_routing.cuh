// Mixture-of-experts routing on the GPU: router logits -> each token's top-k experts and their
// weights under a routing rule (softmax or sigmoid scores, the correction bias, group-limited
// choice, renormalisation, routed_scaling_factor). CPU reference: cpu::moe_route
// (backend/cpu/moe.h), which it follows operation by operation (ties: the lower expert first).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/moe.h"

namespace shardlm::cuda {

// The most expert groups the group-limited choice takes (deepseek_v3 has 8).
inline constexpr int kMoeMaxGroups = 64;

// ids/weights: [n_tokens][top_k] device; logits: [n_tokens][n_experts] fp32 device; bias:
// [n_experts] fp32 device or null; scratch: n_tokens * 2 * n_experts floats of device memory.
void moe_route(const float* logits, int64_t n_tokens, int n_experts, int top_k, bool norm,
               const MoeRouting& r, const float* bias, int32_t* ids, float* weights,
               float* scratch, cudaStream_t stream);

}  // namespace shardlm::cuda
