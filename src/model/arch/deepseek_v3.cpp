// DeepSeek-V3 / R1: the deepseek_v2 block (multi-head latent attention with q_lora_rank, YaRN)
// with sigmoid routing: experts are chosen by score + e_score_correction_bias among the topk_group
// best of n_group groups (a group's score: its best two), weighted by their scores (renormalised
// when norm_topk_prob) times routed_scaling_factor; ungated shared experts; dense first layers.
// transformers' DeepseekV3ForCausalLM; llama.cpp writes its GGUF files as "deepseek2".
#include "model/architecture.h"

namespace shardlm {

// deepseek_v2's fields; the routing rule (sigmoid, correction bias) is read from config.json.
Architecture deepseek_v3_architecture() {
  Architecture a = deepseek_v2_architecture();
  a.name = "deepseek_v3";
  a.hf_model_types = {"deepseek_v3"};
  return a;
}

}  // namespace shardlm
