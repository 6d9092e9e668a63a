// Mixture-of-experts routing on the GPU: router logits -> each token's top-k experts and their
// weights under a routing rule (softmax or sigmoid scores, the correction bias, group-limited
// choice, renormalisation, routed_scaling_factor). CPU reference: cpu::moe_route
// (backend/cpu/moe.h), which it follows operation by operation (ties: the lower expert first).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/moe.h"

namespace shardlm::cuda {

// The most expert groups the group-limited choice takes (deepseek_v3 has 8), the most experts a
// token takes and the most experts (shared memory of the routing kernel).
inline constexpr int kMoeMaxGroups = 64;
inline constexpr int kMoeMaxTopK = 32;
inline constexpr int kMoeMaxExperts = 4096;

// logits[t][e] = x[t] . w[e]: w [n_experts][d] BF16, x [n_tokens][d] fp32, fp32 sums (not the
// BF16-activation GEMM of larger batches: a token's routing must not depend on the batch, and
// near-equal logits must order as on the CPU).
void moe_router_logits(const uint16_t* w, const float* x, int64_t n_tokens, int n_experts,
                       int64_t d, float* logits, cudaStream_t stream);

// ids/weights: [n_tokens][top_k] device; logits: [n_tokens][n_experts] fp32 device; bias:
// [n_experts] fp32 device or null.
void moe_route(const float* logits, int64_t n_tokens, int n_experts, int top_k, bool norm,
               const MoeRouting& r, const float* bias, int32_t* ids, float* weights,
               cudaStream_t stream);

}  // namespace shardlm::cuda
