// The weights of one mixture-of-experts feed-forward block as the backend's moe_ffn op reads them:
// a router, the routed experts' SwiGLU matrices (one view each, whether the file stores them per
// expert or stacked) and, for qwen2_moe, a shared expert scaled by a sigmoid gate.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace shardlm {

struct MoeFfnWeights {
  TensorView router;                  // [d_model, n_experts]: one logit per expert
  std::vector<TensorView> gate;       // [n_experts] x [d_model, expert_ffn]
  std::vector<TensorView> up;         // [n_experts] x [d_model, expert_ffn]
  std::vector<TensorView> down;       // [n_experts] x [expert_ffn, d_model]
  TensorView shared_gate, shared_up;  // [d_model, shared_ffn]; data null when there is none
  TensorView shared_down;             // [shared_ffn, d_model]
  TensorView shared_router;           // [d_model, 1]: sigmoid(x . w) scales the shared expert
  int top_k = 0;                      // experts per token
  bool norm_topk = false;  // renormalise the top-k probabilities to sum 1 (qwen3_moe, mixtral)

  int n_experts() const { return static_cast<int>(gate.size()); }
  bool has_shared() const { return shared_gate.data != nullptr; }
  bool empty() const { return gate.empty(); }
};

}  // namespace shardlm
