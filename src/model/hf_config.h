// Reads a Hugging Face config.json into a ModelConfig (llama, mistral, qwen2, qwen3 families).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/model_config.h"

namespace shardlm {

ModelConfig hf_config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json read_json_file(const std::string& path);

// YaRN rope scaling over c.rope_dim() (transformers' _compute_yarn_parameters): the per-frequency
// divisors into c.rope_freq_factors, c.rope_attn_factor = attn_factor, and deepseek's softmax
// scale factor mscale(mscale_all_dim)^2 into c.attn_scale_mul (mscale_all_dim 0: none). Shared by
// config.json's rope_scaling and GGUF's rope.scaling.* keys.
void apply_yarn(ModelConfig& c, double factor, double original_context, double beta_fast,
                double beta_slow, bool truncate, double attn_factor, double mscale_all_dim);
double yarn_mscale(double factor, double mscale);

}  // namespace shardlm
