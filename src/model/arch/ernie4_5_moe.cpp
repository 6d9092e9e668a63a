// ERNIE-4.5 MoE (ERNIE-4.5-21B-A3B, -300B-A47B; the FastDeploy guide's family), as transformers'
// Ernie4_5_MoeForCausalLM: a llama-style block (GQA, rope on interleaved pairs) whose layers from
// moe_layer_start_index to moe_layer_end_index (every moe_layer_interval-th) are mixtures of
// moe_num_experts experts: softmax router, the moe_k experts chosen by probability +
// e_score_correction_bias (moe_statics), weighted by their probabilities renormalised, plus
// moe_num_shared_experts ungated shared experts.
#include "model/architecture.h"

namespace shardlm {

Architecture ernie4_5_moe_architecture() {
  return {.name = "ernie4_5_moe",
          .hf_model_types = {"ernie4_5_moe"},
          .gguf_arch = "ernie4_5-moe",
          .moe = MoeFields{.experts_key = "moe_num_experts",
                           .ffn_key = "moe_intermediate_size",
                           .always_norm_topk = true,
                           .gguf_norm_topk = true,
                           .topk_key = "moe_k",
                           .shared_count_key = "moe_num_shared_experts",
                           .ernie_layers = true,
                           .score_bias = true},
          .gguf_rope_style = RopeStyle::kNormal,
          .hf_rope_style = RopeStyle::kNormal};
}

}  // namespace shardlm
