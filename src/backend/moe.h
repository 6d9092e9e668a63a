// The weights of one mixture-of-experts feed-forward block as the backend's moe_ffn op reads them:
// a router with its routing rule, the routed experts' SwiGLU matrices (one view each, whether the
// file stores them per expert or stacked) and a shared expert (qwen2_moe: scaled by a sigmoid
// gate; deepseek, ernie: ungated).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace shardlm {

// Concatenates every tensor-parallel rank's [rows][cols] block column-wise into
// [rows][cols * tp] (Transformer::GatherCols).
using GatherColsFn =
    std::function<void(const float* local, int64_t rows, int64_t cols, float* full)>;

// How router logits become each token's experts and weights. The default is softmax top-k
// (qwen, mixtral). deepseek_v3 scores with a sigmoid and chooses by score + correction bias within
// the topk_groups best of n_groups expert groups; deepseek_v2 limits groups by their best score;
// ernie4_5_moe chooses by softmax + bias. The chosen experts' weights are their scores (without
// the bias), renormalised when norm_topk, then times `scale` (routed_scaling_factor).
enum class MoeScoring { kSoftmax, kSigmoid };
enum class MoeGroupScore { kMax, kTop2Sum };  // a group's score: its best expert, or best two
struct MoeRouting {
  MoeScoring scoring = MoeScoring::kSoftmax;
  int n_groups = 1;     // expert groups (1: no group limit)
  int topk_groups = 1;  // groups a token may choose from when n_groups > 1
  MoeGroupScore group_score = MoeGroupScore::kMax;
  float scale = 1.f;  // routed_scaling_factor
};

struct MoeFfnWeights {
  TensorView router;                  // [d_model, n_experts]: one logit per expert
  std::vector<TensorView> gate;       // [n_experts] x [d_model, expert_ffn]
  std::vector<TensorView> up;         // [n_experts] x [d_model, expert_ffn]
  std::vector<TensorView> down;       // [n_experts] x [expert_ffn, d_model]
  TensorView shared_gate, shared_up;  // [d_model, shared_ffn]; data null when there is none
  TensorView shared_down;             // [shared_ffn, d_model]
  TensorView shared_router;           // [d_model, 1]: sigmoid(x . w) scales the shared expert;
                                      // data null: the shared expert is added unscaled
  MoeRouting routing;
  const float* score_bias = nullptr;  // [n_experts] e_score_correction_bias, or null
  int top_k = 0;                      // experts per token
  bool norm_topk = false;  // renormalise the top-k probabilities to sum 1 (qwen3_moe, mixtral)
  // Tensor parallelism over tp ranks: gate/up (and shared_gate/up) hold this rank's 1/tp of the
  // expert's FFN rows and down this rank's 1/tp of the d_model output rows, as a dense FFN's; the
  // router and the shared gate stay whole, so every rank routes every token alike.
  int tp = 1;
  // Expert parallelism over those tp ranks instead (--enable-expert-parallel): this rank holds
  // experts [first_expert, first_expert + gate.size()) of n_routed whole, and the shared expert
  // whole; every rank routes every token alike, runs its experts' rows, and the ranks' rows are
  // joined (tp_gather) before each token sums its experts in slot order, as on one rank.
  bool expert_parallel = false;
  int first_expert = 0;
  int n_routed = 0;  // all experts (the router's rows); 0: gate.size()
  // Megatron (the default TP mode where the backend has it): down and shared_down hold this rank's
  // input columns of every output row (row-parallel), so the op writes this rank's partial sum of
  // the whole output without any gather, and the caller all-reduces it, once per layer. The
  // experts are split as above (sliced: 1/tp of each; expert_parallel: whole experts, only their
  // slots summed); the shared expert is split like a dense FFN either way.
  bool partial_sum = false;

  int n_experts() const { return n_routed > 0 ? n_routed : static_cast<int>(gate.size()); }
  int n_local() const { return static_cast<int>(gate.size()); }
  bool has_shared() const { return shared_gate.data != nullptr; }
  bool empty() const { return gate.empty(); }
};

}  // namespace shardlm
