// config.json -> ModelConfig, with type checks that name the key.
#include "model/hf_config.h"

#include <fstream>

#include "core/error.h"
#include "model/architecture.h"

namespace shardlm {

namespace {

int get_int(const nlohmann::json& j, const char* key, const std::string& src, int fallback = -1) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback >= 0) return fallback;
    fail("'{}': missing '{}'", src, key);
  }
  if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0 ||
      j[key].get<int64_t>() > (1 << 30)) {
    fail("'{}': '{}' must be a non-negative integer", src, key);
  }
  return j[key].get<int>();
}

double get_number(const nlohmann::json& j, const char* key, const std::string& src,
                  double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) fail("'{}': '{}' must be a number", src, key);
  return j[key].get<double>();
}

void read_rope_scaling(const nlohmann::json& j, ModelConfig& c, const std::string& src) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return;
  const auto& rs = j["rope_scaling"];
  if (!rs.is_object()) fail("'{}': 'rope_scaling' must be an object", src);
  const std::string type = rs.value("rope_type", rs.value("type", std::string()));
  if (type == "default") return;
  if (type != "llama3") {
    fail("'{}': rope_scaling type '{}' is not supported (supported: llama3)", src, type);
  }
  c.rope_freq_factors = llama3_rope_freq_factors(
      c.head_dim, c.rope_theta, static_cast<float>(get_number(rs, "factor", src, 8.0)),
      static_cast<float>(get_number(rs, "low_freq_factor", src, 1.0)),
      static_cast<float>(get_number(rs, "high_freq_factor", src, 4.0)),
      get_int(rs, "original_max_position_embeddings", src, 8192));
}

std::vector<int> get_int_list(const nlohmann::json& j, const char* key, const std::string& src) {
  std::vector<int> out;
  if (!j.contains(key) || j[key].is_null()) return out;
  if (!j[key].is_array()) fail("'{}': '{}' must be a list of layer indices", src, key);
  for (const auto& v : j[key]) {
    if (!v.is_number_integer()) fail("'{}': '{}' must be a list of layer indices", src, key);
    out.push_back(v.get<int>());
  }
  return out;
}

// The expert fields of a mixture-of-experts config (router_aux_loss_coef and the other training
// settings are ignored).
void read_moe(const nlohmann::json& j, const MoeFields& m, ModelConfig& c, const std::string& src) {
  c.n_experts = get_int(j, m.experts_key.c_str(), src);
  c.n_experts_used = get_int(j, "num_experts_per_tok", src);
  c.moe_ffn_dim = get_int(j, m.ffn_key.c_str(), src);
  if (m.always_norm_topk) {
    c.norm_topk_prob = true;
  } else if (j.contains("norm_topk_prob") && !j["norm_topk_prob"].is_null()) {
    if (!j["norm_topk_prob"].is_boolean()) fail("'{}': 'norm_topk_prob' must be a boolean", src);
    c.norm_topk_prob = j["norm_topk_prob"].get<bool>();
  }
  if (m.sparse_step) {
    c.moe_layer_step = get_int(j, "decoder_sparse_step", src, 1);
    c.dense_layers = get_int_list(j, "mlp_only_layers", src);
  }
  if (m.shared_expert) c.shared_ffn_dim = get_int(j, "shared_expert_intermediate_size", src);
}

}  // namespace

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read '{}'", path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) fail("'{}' is not valid JSON", path);
  return j;
}

ModelConfig hf_config_from_json(const nlohmann::json& j, const std::string& src) {
  if (!j.is_object()) fail("'{}' must hold a JSON object", src);
  if (!j.contains("model_type") || !j["model_type"].is_string())
    fail("'{}': missing 'model_type'", src);
  const Architecture& arch = find_hf_architecture(j["model_type"].get<std::string>(), src);
  ModelConfig c;
  c.arch = arch.name;
  c.name = j.value("_name_or_path", std::string());
  c.n_layers = get_int(j, "num_hidden_layers", src);
  c.d_model = get_int(j, "hidden_size", src);
  c.n_heads = get_int(j, "num_attention_heads", src);
  c.n_kv_heads = get_int(j, "num_key_value_heads", src, c.n_heads);
  c.head_dim = get_int(j, "head_dim", src, c.n_heads > 0 ? c.d_model / c.n_heads : 0);
  c.ffn_dim = get_int(j, "intermediate_size", src);
  c.vocab_size = get_int(j, "vocab_size", src);
  c.context_length = get_int(j, "max_position_embeddings", src, 4096);
  c.norm_eps = static_cast<float>(get_number(j, "rms_norm_eps", src, 1e-6));
  c.rope_theta = static_cast<float>(get_number(j, "rope_theta", src, 10000.0));
  c.rope_style = RopeStyle::kNeox;
  c.qkv_bias = arch.qkv_bias || (j.contains("attention_bias") && j["attention_bias"] == true);
  c.qk_norm = arch.qk_norm;
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  if (arch.moe) read_moe(j, *arch.moe, c, src);
  const bool sliding =
      arch.name == "mistral" || arch.name == "mixtral" || j.value("use_sliding_window", false);
  if (sliding && j.contains("sliding_window") && j["sliding_window"].is_number_integer()) {
    c.sliding_window = j["sliding_window"].get<int>();
  }
  read_rope_scaling(j, c, src);
  return c;
}

}  // namespace shardlm
