// config.json -> ModelConfig, with type checks that name the key.
#include "model/hf_config.h"

#include <cmath>
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

void read_yarn(const nlohmann::json& rs, ModelConfig& c, const std::string& src) {
  const double orig = get_int(rs, "original_max_position_embeddings", src, c.context_length);
  const double factor = get_number(rs, "factor", src, c.context_length / orig);
  const double mscale = get_number(rs, "mscale", src, 0),
               all = get_number(rs, "mscale_all_dim", src, 0);
  if (!(factor > 0) || !(orig > 0)) fail("'{}': rope_scaling factor must be positive", src);
  double attn = get_number(rs, "attention_factor", src, 0);
  if (attn == 0) {
    attn = mscale && all ? yarn_mscale(factor, mscale) / yarn_mscale(factor, all)
                         : yarn_mscale(factor, 1);
  }
  apply_yarn(c, factor, orig, get_number(rs, "beta_fast", src, 32),
             get_number(rs, "beta_slow", src, 1), rs.value("truncate", true), attn, all);
}

void read_rope_scaling(const nlohmann::json& j, ModelConfig& c, const std::string& src) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return;
  const auto& rs = j["rope_scaling"];
  if (!rs.is_object()) fail("'{}': 'rope_scaling' must be an object", src);
  const std::string type = rs.value("rope_type", rs.value("type", std::string()));
  if (type == "default") return;
  if (type == "yarn" && c.is_mla()) {
    read_yarn(rs, c, src);
    return;
  }
  if (type != "llama3" || c.is_mla()) {
    fail("'{}': rope_scaling type '{}' is not supported (supported: {})", src, type,
         c.is_mla() ? "yarn" : "llama3; yarn with multi-head latent attention models only");
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

// DeepSeek's router: topk_method greedy | group_limited_greedy (softmax) | noaux_tc (sigmoid with
// e_score_correction_bias), n_group / topk_group, routed_scaling_factor; and the dense first
// layers (first_k_dense_replace).
void read_deepseek_routing(const nlohmann::json& j, ModelConfig& c, const std::string& src) {
  const std::string method = j.value("topk_method", std::string("greedy"));
  const std::string scoring = j.value("scoring_func", std::string("softmax"));
  MoeRouting& r = c.moe_routing;
  if (method == "noaux_tc") {
    if (scoring != "sigmoid") {
      fail("'{}': topk_method 'noaux_tc' with scoring_func '{}' is not supported (sigmoid only)",
           src, scoring);
    }
    r.scoring = MoeScoring::kSigmoid;
    r.group_score = MoeGroupScore::kTop2Sum;
    c.moe_score_bias = true;
  } else if (method == "greedy" || method == "group_limited_greedy") {
    if (scoring != "softmax") {
      fail("'{}': topk_method '{}' with scoring_func '{}' is not supported (softmax only)", src,
           method, scoring);
    }
  } else {
    fail(
        "'{}': topk_method '{}' is not supported; supported: greedy, group_limited_greedy "
        "(softmax), noaux_tc (sigmoid)",
        src, method);
  }
  if (method != "greedy") {
    r.n_groups = get_int(j, "n_group", src, 1);
    r.topk_groups = get_int(j, "topk_group", src, 1);
  }
  r.scale = static_cast<float>(get_number(j, "routed_scaling_factor", src, 1.0));
  const int first_dense = get_int(j, "first_k_dense_replace", src, 0);
  for (int il = 0; il < std::min(first_dense, c.n_layers); ++il) c.dense_layers.push_back(il);
}

// ERNIE-4.5's MoE layers: every moe_layer_interval-th from moe_layer_start_index to
// moe_layer_end_index (-1: the last layer); the rest dense.
void read_ernie_layers(const nlohmann::json& j, ModelConfig& c, const std::string& src) {
  if (j.value("use_bias", false)) {
    fail("'{}': use_bias true (biases on every projection) is not supported for ernie4_5_moe", src);
  }
  const int start = get_int(j, "moe_layer_start_index", src, 1);
  const int end = j.contains("moe_layer_end_index") && j["moe_layer_end_index"] == -1
                      ? c.n_layers - 1
                      : get_int(j, "moe_layer_end_index", src, c.n_layers - 1);
  c.moe_layer_step = get_int(j, "moe_layer_interval", src, 1);
  for (int il = 0; il < c.n_layers; ++il) {
    if (il < start || il > end) c.dense_layers.push_back(il);
  }
}

// Multi-head latent attention's shapes; the head size is a query head's (nope + rope).
void read_mla(const nlohmann::json& j, ModelConfig& c, const std::string& src) {
  c.q_lora_rank = get_int(j, "q_lora_rank", src, 0);  // null: no bottleneck (V2-Lite)
  c.kv_lora_rank = get_int(j, "kv_lora_rank", src);
  c.qk_nope_head_dim = get_int(j, "qk_nope_head_dim", src);
  c.qk_rope_head_dim = get_int(j, "qk_rope_head_dim", src);
  c.v_head_dim = get_int(j, "v_head_dim", src);
  c.head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim;
  c.n_kv_heads = c.n_heads;
  c.rope_style = j.value("rope_interleave", true) ? RopeStyle::kNormal : RopeStyle::kNeox;
  if (c.qkv_bias) {
    fail("'{}': attention_bias true is not supported with multi-head latent attention", src);
  }
  if (c.kv_lora_rank == 0) fail("'{}': kv_lora_rank must be positive", src);
}

// The expert fields of a mixture-of-experts config (router_aux_loss_coef and the other training
// settings are ignored).
void read_moe(const nlohmann::json& j, const MoeFields& m, ModelConfig& c, const std::string& src) {
  c.n_experts = get_int(j, m.experts_key.c_str(), src);
  c.n_experts_used = get_int(j, m.topk_key.c_str(), src);
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
  if (m.shared_expert) {
    c.shared_ffn_dim = get_int(j, "shared_expert_intermediate_size", src);
    c.shared_expert_gated = true;
  }
  if (!m.shared_count_key.empty()) {
    c.shared_ffn_dim = get_int(j, m.shared_count_key.c_str(), src, 0) * c.moe_ffn_dim;
  }
  c.moe_score_bias = m.score_bias;
  if (m.deepseek_routing) read_deepseek_routing(j, c, src);
  if (m.ernie_layers) read_ernie_layers(j, c, src);
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
  c.rope_style = arch.hf_rope_style;
  c.qkv_bias = arch.qkv_bias || (j.contains("attention_bias") && j["attention_bias"] == true);
  c.qk_norm = arch.qk_norm;
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  if (arch.mla) read_mla(j, c, src);
  if (arch.moe) read_moe(j, *arch.moe, c, src);
  const bool sliding =
      arch.name == "mistral" || arch.name == "mixtral" || j.value("use_sliding_window", false);
  if (sliding && j.contains("sliding_window") && j["sliding_window"].is_number_integer()) {
    c.sliding_window = j["sliding_window"].get<int>();
  }
  read_rope_scaling(j, c, src);
  return c;
}

double yarn_mscale(double factor, double mscale) {
  return factor <= 1 ? 1.0 : 0.1 * mscale * std::log(factor) + 1.0;
}

// YaRN interpolates the low frequencies by `factor` and keeps the high ones, blended over the dims
// between beta_fast and beta_slow rotations in the original context.
void apply_yarn(ModelConfig& c, double factor, double orig, double fast, double slow, bool truncate,
                double attn_factor, double mscale_all_dim) {
  const int dim = c.rope_dim();
  const double base = c.rope_theta;
  auto correction_dim = [&](double rotations) {
    return dim * std::log(orig / (rotations * 2 * M_PI)) / (2 * std::log(base));
  };
  double lo = correction_dim(fast), hi = correction_dim(slow);
  if (truncate) {
    lo = std::floor(lo);
    hi = std::ceil(hi);
  }
  lo = std::max(lo, 0.0);
  hi = std::min(hi, dim - 1.0);
  if (lo == hi) hi += 0.001;
  c.rope_freq_factors.resize(static_cast<size_t>(dim / 2));
  for (int i = 0; i < dim / 2; ++i) {
    const double ramp = std::clamp((i - lo) / (hi - lo), 0.0, 1.0);
    const double extrapolate = 1 - ramp;  // 1: keep the frequency, 0: divide it by factor
    c.rope_freq_factors[static_cast<size_t>(i)] =
        static_cast<float>(1.0 / ((1 - extrapolate) / factor + extrapolate));
  }
  c.rope_attn_factor = static_cast<float>(attn_factor);
  if (mscale_all_dim) {
    const double m = yarn_mscale(factor, mscale_all_dim);
    c.attn_scale_mul = static_cast<float>(m * m);
  }
}

}  // namespace shardlm
