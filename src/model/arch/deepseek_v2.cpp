// DeepSeek-V2 (V2, V2-Lite, V2.5): multi-head latent attention (queries through q_lora_rank
// unless it is null, as in V2-Lite; keys and values from a kv_lora_rank latent plus one shared
// rope key, which is all the KV cache holds), YaRN rope on the rotated part, interleaved pairs.
// The first first_k_dense_replace layers have a dense FFN, the others n_routed_experts experts
// (softmax router; topk_method "greedy" or "group_limited_greedy" over n_group groups by their
// best expert) times routed_scaling_factor, plus n_shared_experts ungated shared experts. The top-k
// weights are renormalised when norm_topk_prob, as DeepSeek's own code does.
#include "model/architecture.h"

namespace shardlm {

Architecture deepseek_v2_architecture() {
  return {.name = "deepseek_v2",
          .hf_model_types = {"deepseek_v2"},
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
