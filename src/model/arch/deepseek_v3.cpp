// DeepSeek-V3 / R1: the deepseek_v2 block (multi-head latent attention with q_lora_rank, YaRN)
// with sigmoid routing: experts are chosen by score + e_score_correction_bias among the topk_group
// best of n_group groups (a group's score: its best two), weighted by their scores (renormalised
// when norm_topk_prob) times routed_scaling_factor; ungated shared experts; dense first layers.
// transformers' DeepseekV3ForCausalLM; llama.cpp writes its GGUF files as "deepseek2".
#include "model/architecture.h"

namespace shardlm {

Architecture deepseek_v3_architecture() {
  return {.name = "deepseek_v3",
          .hf_model_types = {"deepseek_v3"},
          .gguf_arch = "deepseek2",
          .moe = MoeFields{.experts_key = "n_routed_experts",
                           .ffn_key = "moe_intermediate_size",
                           .shared_count_key = "n_shared_experts",
                           .deepseek_routing = true},
          .gguf_rope_style = RopeStyle::kNormal,
          .mla = true,
          .hf_rope_style = RopeStyle::kNormal};
}

}  // namespace shardlm
