// The CPU mixture-of-experts FFN (Backend::moe_ffn): routing (softmax, top-k, renormalisation),
// the (token, slot) pairs grouped by expert so each expert multiplies its tokens as one matmul on
// the existing threaded GEMM path, and the weighted sum back in each token's own slot order, so a
// token's output is bit-identical whatever else is in the step. moe_ffn_reference is the plain
// per-token loop the tests compare against.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/moe.h"
#include "core/thread_pool.h"

namespace shardlm::cpu {

// Softmax over n_experts router logits, then the top_k largest probabilities in descending order
// (equal ones: the lower expert first) into ids/weights ([top_k] each), divided by their sum when
// norm.
void moe_route(const float* logits, int n_experts, int top_k, bool norm, int32_t* ids,
               float* weights);
// The same under routing rule r (backend/moe.h): scores (softmax or sigmoid), the choice by score
// + bias (bias may be null) within the best groups, weights = the chosen scores (renormalised
// when norm) times r.scale. scratch: 2 * n_experts floats.
void moe_route(const float* logits, int n_experts, int top_k, bool norm, const MoeRouting& r,
               const float* bias, int32_t* ids, float* weights, float* scratch);

// Scratch for up to `tokens` tokens, sized once at start-up (reserve grows it only when a call
// needs more than was reserved).
struct MoeScratch {
  std::vector<float> logits;     // [tokens][n_experts]
  std::vector<float> route;      // [2 * n_experts]: moe_route's scratch
  std::vector<int32_t> ids;      // [tokens][top_k] chosen experts
  std::vector<float> weights;    // [tokens][top_k] their weights
  std::vector<int32_t> offsets;  // [n_experts + 1]: expert e's pairs are [offsets[e], offsets[e+1])
  std::vector<int32_t> pair_row;   // [tokens * top_k]: row of pair (t, k) in the grouped buffers
  std::vector<int32_t> row_token;  // [tokens * top_k]: token of each grouped row
  std::vector<float> xs;           // [tokens * top_k][d_model] grouped inputs
  std::vector<float> gate, up;     // [tokens * max(top_k * ffn, shared_ffn)]
  std::vector<float> ys;           // [tokens * top_k][d_model] grouped expert outputs
  // Tensor parallelism only: the ranks' hidden columns gathered ([tokens * max(top_k * ffn,
  // shared_ffn)] x tp, ffn and shared_ffn this rank's widths) and this rank's output columns.
  std::vector<float> hidden, out_local;
  // Expert parallelism only: this rank's grouped rows padded to the longest rank's, and every
  // rank's side by side ([rows][d_model * tp]).
  std::vector<float> ep_local, ep_all;
  std::atomic<int64_t> expert_rows{0};  // rows run through this rank's experts (the load metric)
  void reserve(int64_t tokens, int n_experts, int top_k, int64_t d_model, int64_t ffn,
               int64_t shared_ffn, int tp = 1);
};

// out[t] (d_model floats) = the MoE FFN of x[t] (see Backend::moe_ffn). out must not alias x.
// With w.tp > 1, tp_gather joins the ranks' columns (the expert hidden before down, the output at
// the end); every rank must call it with the same tokens. With w.partial_sum (Megatron) out is
// this rank's partial sum and tp_gather is not used.
void moe_ffn(ThreadPool& pool, MatmulWorkspace& ws, MoeScratch& s, const MoeFfnWeights& w,
             const float* x, int64_t n_tokens, float* out, const GatherColsFn* tp_gather = nullptr);

// The same computed token by token in plain loops over dequantised weights (double sums).
void moe_ffn_reference(const MoeFfnWeights& w, const float* x, int64_t n_tokens, float* out);

}  // namespace shardlm::cpu
