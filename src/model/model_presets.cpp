// The preset table: each entry the config.json fields the loader reads.
#include "model/model_presets.h"

#include <map>

namespace shardlm {

namespace {

using nlohmann::json;

json llama3_rope(double factor) {
  return {{"rope_type", "llama3"},
          {"factor", factor},
          {"low_freq_factor", 1.0},
          {"high_freq_factor", 4.0},
          {"original_max_position_embeddings", 8192}};
}

json llama3(int hidden, int ffn, int layers, int heads, bool tied, double rope_factor) {
  return {{"model_type", "llama"},
          {"hidden_size", hidden},
          {"intermediate_size", ffn},
          {"num_hidden_layers", layers},
          {"num_attention_heads", heads},
          {"num_key_value_heads", 8},
          {"head_dim", hidden / heads},
          {"vocab_size", 128256},
          {"max_position_embeddings", 131072},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 500000.0},
          {"rope_scaling", llama3_rope(rope_factor)},
          {"tie_word_embeddings", tied}};
}

json yarn_rope(double mscale) {
  return {{"type", "yarn"},          {"factor", 40.0}, {"original_max_position_embeddings", 4096},
          {"beta_fast", 32},         {"beta_slow", 1}, {"mscale", mscale},
          {"mscale_all_dim", mscale}};
}

// DeepSeek-V2-Lite (15.7B, 2.4B active) and DeepSeek-V3 (671B, 37B active) as their config.json.
json deepseek(bool v3) {
  json j = {{"model_type", v3 ? "deepseek_v3" : "deepseek_v2"},
            {"hidden_size", v3 ? 7168 : 2048},
            {"intermediate_size", v3 ? 18432 : 10944},
            {"moe_intermediate_size", v3 ? 2048 : 1408},
            {"num_hidden_layers", v3 ? 61 : 27},
            {"num_attention_heads", v3 ? 128 : 16},
            {"num_key_value_heads", v3 ? 128 : 16},
            {"n_shared_experts", v3 ? 1 : 2},
            {"n_routed_experts", v3 ? 256 : 64},
            {"num_experts_per_tok", v3 ? 8 : 6},
            {"routed_scaling_factor", v3 ? 2.5 : 1.0},
            {"kv_lora_rank", 512},
            {"q_lora_rank", v3 ? json(1536) : json(nullptr)},
            {"qk_nope_head_dim", 128},
            {"qk_rope_head_dim", 64},
            {"v_head_dim", 128},
            {"topk_method", v3 ? "noaux_tc" : "greedy"},
            {"scoring_func", v3 ? "sigmoid" : "softmax"},
            {"n_group", v3 ? 8 : 1},
            {"topk_group", v3 ? 4 : 1},
            {"first_k_dense_replace", v3 ? 3 : 1},
            {"norm_topk_prob", v3},
            {"vocab_size", v3 ? 129280 : 102400},
            {"max_position_embeddings", 163840},
            {"rms_norm_eps", 1e-6},
            {"rope_theta", 10000.0},
            {"rope_scaling", yarn_rope(v3 ? 1.0 : 0.707)},
            {"tie_word_embeddings", false}};
  return j;
}

const std::map<std::string, json>& presets() {
  static const std::map<std::string, json> table = {
      {"smollm2-135m",
       {{"model_type", "llama"},
        {"hidden_size", 576},
        {"intermediate_size", 1536},
        {"num_hidden_layers", 30},
        {"num_attention_heads", 9},
        {"num_key_value_heads", 3},
        {"vocab_size", 49152},
        {"max_position_embeddings", 8192},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 100000.0},
        {"tie_word_embeddings", true}}},
      {"llama-3.2-1b", llama3(2048, 8192, 16, 32, true, 32.0)},
      {"llama-3.2-3b", llama3(3072, 8192, 28, 24, true, 32.0)},
      {"llama-3.1-8b", llama3(4096, 14336, 32, 32, false, 8.0)},
      {"llama-3.1-70b", llama3(8192, 28672, 80, 64, false, 8.0)},
      {"qwen2.5-7b",
       {{"model_type", "qwen2"},
        {"hidden_size", 3584},
        {"intermediate_size", 18944},
        {"num_hidden_layers", 28},
        {"num_attention_heads", 28},
        {"num_key_value_heads", 4},
        {"vocab_size", 152064},
        {"max_position_embeddings", 32768},
        {"rms_norm_eps", 1e-6},
        {"rope_theta", 1000000.0},
        {"tie_word_embeddings", false}}},
      {"qwen3-8b",
       {{"model_type", "qwen3"},
        {"hidden_size", 4096},
        {"intermediate_size", 12288},
        {"num_hidden_layers", 36},
        {"num_attention_heads", 32},
        {"num_key_value_heads", 8},
        {"head_dim", 128},
        {"vocab_size", 151936},
        {"max_position_embeddings", 40960},
        {"rms_norm_eps", 1e-6},
        {"rope_theta", 1000000.0},
        {"tie_word_embeddings", false}}},
      {"qwen3-30b-a3b",
       {{"model_type", "qwen3_moe"},
        {"hidden_size", 2048},
        {"intermediate_size", 6144},
        {"moe_intermediate_size", 768},
        {"num_experts", 128},
        {"num_experts_per_tok", 8},
        {"norm_topk_prob", true},
        {"decoder_sparse_step", 1},
        {"mlp_only_layers", json::array()},
        {"num_hidden_layers", 48},
        {"num_attention_heads", 32},
        {"num_key_value_heads", 4},
        {"head_dim", 128},
        {"vocab_size", 151936},
        {"max_position_embeddings", 40960},
        {"rms_norm_eps", 1e-6},
        {"rope_theta", 1000000.0},
        {"tie_word_embeddings", false}}},
      {"deepseek-v2-lite", deepseek(false)},
      {"deepseek-v3", deepseek(true)},
      {"ernie-4.5-21b-a3b",
       {{"model_type", "ernie4_5_moe"},
        {"hidden_size", 2560},
        {"intermediate_size", 12288},
        {"moe_intermediate_size", 1536},
        {"moe_num_experts", 64},
        {"moe_k", 6},
        {"moe_num_shared_experts", 2},
        {"moe_layer_start_index", 1},
        {"moe_layer_end_index", 27},
        {"moe_layer_interval", 1},
        {"num_hidden_layers", 28},
        {"num_attention_heads", 20},
        {"num_key_value_heads", 4},
        {"head_dim", 128},
        {"vocab_size", 103424},
        {"max_position_embeddings", 131072},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 500000.0},
        {"use_bias", false},
        {"tie_word_embeddings", true}}},
      {"mixtral-8x7b",
       {{"model_type", "mixtral"},
        {"hidden_size", 4096},
        {"intermediate_size", 14336},
        {"num_local_experts", 8},
        {"num_experts_per_tok", 2},
        {"num_hidden_layers", 32},
        {"num_attention_heads", 32},
        {"num_key_value_heads", 8},
        {"vocab_size", 32000},
        {"max_position_embeddings", 32768},
        {"rms_norm_eps", 1e-5},
        {"rope_theta", 1000000.0},
        {"tie_word_embeddings", false}}},
  };
  return table;
}

}  // namespace

std::optional<nlohmann::json> model_preset(const std::string& name) {
  const auto it = presets().find(name);
  if (it == presets().end()) return std::nullopt;
  json j = it->second;
  j["_name_or_path"] = name;
  return j;
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, cfg] : presets()) names.push_back(name);
  return names;
}

}  // namespace shardlm
