// Qwen2-MoE (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): the qwen2 block (q/k/v biases, neox rope) with a
// mixture-of-experts FFN: softmax router, top-k experts (not renormalised unless norm_topk_prob),
// plus a shared expert every token runs, scaled by sigmoid(x . shared_expert_gate).
#include "model/architecture.h"

namespace shardlm {

Architecture qwen2_moe_architecture() {
  return {.name = "qwen2_moe",
          .hf_model_types = {"qwen2_moe"},
          .qkv_bias = true,
          .gguf_arch = "qwen2moe",
          .moe = MoeFields{.experts_key = "num_experts",
                           .ffn_key = "moe_intermediate_size",
                           .sparse_step = true,
                           .shared_expert = true},
          .gguf_rope_style = RopeStyle::kNeox};
}

}  // namespace shardlm
