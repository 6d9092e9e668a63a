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
