// Loads a model from a GGUF file: hyper-parameters from "<arch>.*" metadata, the tokenizer from
// "tokenizer.ggml.*", weights in place from the mapping.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "model/architecture.h"
#include "model/hf_config.h"
#include "model/model.h"
#include "tokenizer/tokenizer_gguf.h"

namespace shardlm {

namespace {

int required_int(const GgufFile& g, const std::string& key) {
  auto v = g.get_int(key);
  if (!v) fail("'{}': missing metadata key '{}'", g.path(), key);
  if (*v <= 0 || *v > (1 << 30))
    fail("'{}': metadata key '{}' = {} is out of range", g.path(), key, *v);
  return static_cast<int>(*v);
}

// A float hyper-parameter; Error (not an undefined float conversion) when it does not fit a float.
float float_key(const GgufFile& g, const std::string& key, double fallback) {
  const double v = g.get_float(key).value_or(fallback);
  if (!std::isfinite(v) || std::fabs(v) > std::numeric_limits<float>::max()) {
    fail("'{}': metadata key '{}' = {} is out of range", g.path(), key, v);
  }
  return static_cast<float>(v);
}

int optional_int(const GgufFile& g, const std::string& key, int fallback) {
  return g.has(key) ? required_int(g, key) : fallback;
}

// The first leading_dense_block_count layers keep the dense FFN (deepseek2, ernie4_5-moe).
void read_leading_dense_layers(const GgufFile& g, const std::string& p, ModelConfig& c) {
  const int dense = static_cast<int>(g.get_int(p + "leading_dense_block_count").value_or(0));
  for (int il = 0; il < std::min(dense, c.n_layers); ++il) c.dense_layers.push_back(il);
}

// llama.cpp's deepseek2 expert keys: the leading dense layers, shared experts (ungated, of the
// experts' width), the routed weights' scale, sigmoid gating with the correction bias
// (exp_probs_b) for V3-style files, the expert groups.
void read_deepseek_moe(const GgufFile& g, const std::string& p, ModelConfig& c) {
  c.norm_topk_prob = g.get_bool(p + "expert_weights_norm").value_or(false);
  c.shared_ffn_dim = optional_int(g, p + "expert_shared_count", 0) * c.moe_ffn_dim;
  MoeRouting& r = c.moe_routing;
  r.scale = float_key(g, p + "expert_weights_scale", 1.0);
  const auto gating = g.get_int(p + "expert_gating_func").value_or(1);
  if (gating == 2) {
    r.scoring = MoeScoring::kSigmoid;
    r.group_score = MoeGroupScore::kTop2Sum;
    c.moe_score_bias = true;
    c.arch = "deepseek_v3";
  } else if (gating != 1) {
    fail(
        "'{}': metadata key '{}' = {} is not a gating function deepseek2 files use (1 softmax, "
        "2 sigmoid)",
        g.path(), p + "expert_gating_func", gating);
  }
  r.n_groups = optional_int(g, p + "expert_group_count", 1);
  r.topk_groups = optional_int(g, p + "expert_group_used_count", 1);
  read_leading_dense_layers(g, p, c);
}

// llama.cpp's ernie4_5-moe keys: the leading dense layers (moe_layer_start_index), every
// interleave_moe_layer_step-th layer after them a mixture, ungated shared experts (of
// expert_shared_feed_forward_length, else expert_shared_count experts' width, as llama.cpp reads
// them), the router's correction bias (exp_probs_b), probabilities always renormalised.
void read_ernie_moe(const GgufFile& g, const std::string& p, ModelConfig& c) {
  read_leading_dense_layers(g, p, c);
  c.moe_layer_step = optional_int(g, p + "interleave_moe_layer_step", 1);
  const int shared = static_cast<int>(g.get_int(p + "expert_shared_count").value_or(0));
  c.shared_ffn_dim = 0;
  if (shared > 0) {
    c.shared_ffn_dim =
        optional_int(g, p + "expert_shared_feed_forward_length", shared * c.moe_ffn_dim);
  }
  c.moe_score_bias = true;
  c.norm_topk_prob = true;
}

// llama.cpp's deepseek2 attention keys: q_lora_rank (absent: none), kv_lora_rank, the rope part
// (rope.dimension_count), a query head's and a value head's sizes (key_length_mla /
// value_length_mla in files converted for the absorbed form, else key_length / value_length), and
// YaRN (rope.scaling.*; llama.cpp's yarn_log_multiplier is 0.1 * mscale_all_dim).
void read_mla(const GgufFile& g, const std::string& p, ModelConfig& c) {
  c.q_lora_rank = optional_int(g, p + "attention.q_lora_rank", 0);
  c.kv_lora_rank = required_int(g, p + "attention.kv_lora_rank");
  c.qk_rope_head_dim = required_int(g, p + "rope.dimension_count");
  const bool mla_keys = g.has(p + "attention.key_length_mla");
  const int qk =
      required_int(g, p + (mla_keys ? "attention.key_length_mla" : "attention.key_length"));
  c.v_head_dim =
      required_int(g, p + (mla_keys ? "attention.value_length_mla" : "attention.value_length"));
  if (qk <= c.qk_rope_head_dim) {
    fail("'{}': a query head of {} is not larger than its rope part of {}", g.path(), qk,
         c.qk_rope_head_dim);
  }
  c.qk_nope_head_dim = qk - c.qk_rope_head_dim;
  c.head_dim = qk;
  c.n_kv_heads = c.n_heads;
  c.rope_style = RopeStyle::kNormal;
  const std::string type = g.get_string(p + "rope.scaling.type").value_or("none");
  if (type == "none") return;
  if (type != "yarn") {
    fail("'{}': metadata key '{}' = '{}' is not supported (supported: yarn)", g.path(),
         p + "rope.scaling.type", type);
  }
  const double factor = float_key(g, p + "rope.scaling.factor", 1);
  const double orig = optional_int(g, p + "rope.scaling.original_context_length", c.context_length);
  const double mscale_all = float_key(g, p + "rope.scaling.yarn_log_multiplier", 0) / 0.1;
  apply_yarn(c, factor, orig, 32, 1, true, 1.0, mscale_all);
}

// llama.cpp's expert keys: every layer of these files is a mixture of experts (but deepseek2's
// and ernie4_5-moe's leading dense layers).
void read_moe(const GgufFile& g, const Architecture& arch, ModelConfig& c) {
  const std::string p = arch.gguf_name() + ".";
  c.n_experts = required_int(g, p + "expert_count");
  c.n_experts_used = required_int(g, p + "expert_used_count");
  c.moe_ffn_dim = g.has(p + "expert_feed_forward_length")
                      ? required_int(g, p + "expert_feed_forward_length")
                      : c.ffn_dim;
  c.norm_topk_prob = g.get_bool(p + "expert_weights_norm").value_or(arch.moe->gguf_norm_topk);
  if (arch.moe->deepseek_routing) {
    read_deepseek_moe(g, p, c);
    return;
  }
  // llama.cpp's gating functions: 0 unset, 1 softmax, 2 sigmoid, 3 softmax over the chosen.
  if (const auto gating = g.get_int(p + "expert_gating_func"); gating && *gating > 1) {
    fail("'{}': metadata key '{}' = {} asks for {} routing; {} routes with a softmax only",
         g.path(), p + "expert_gating_func", *gating, *gating == 2 ? "sigmoid" : "another",
         arch.name);
  }
  if (arch.moe->shared_expert) {
    c.shared_ffn_dim = required_int(g, p + "expert_shared_feed_forward_length");
    c.shared_expert_gated = true;
  }
  if (arch.moe->ernie_layers) read_ernie_moe(g, p, c);
}

ModelConfig read_config(const GgufFile& g, const Architecture& arch) {
  const std::string p = arch.gguf_name() + ".";
  ModelConfig c;
  c.arch = arch.name;
  c.name = g.get_string("general.name").value_or("");
  c.n_layers = required_int(g, p + "block_count");
  c.d_model = required_int(g, p + "embedding_length");
  c.n_heads = required_int(g, p + "attention.head_count");
  c.n_kv_heads = g.has(p + "attention.head_count_kv")
                     ? required_int(g, p + "attention.head_count_kv")
                     : c.n_heads;
  c.head_dim = g.has(p + "attention.key_length") ? required_int(g, p + "attention.key_length")
                                                 : c.d_model / c.n_heads;
  // A mixture of experts without dense layers may leave the dense width out: the experts' then.
  const bool moe_without_dense = arch.moe && !g.has(p + "feed_forward_length");
  c.ffn_dim = moe_without_dense ? required_int(g, p + "expert_feed_forward_length")
                                : required_int(g, p + "feed_forward_length");
  c.context_length = required_int(g, p + "context_length");
  c.norm_eps = float_key(g, p + "attention.layer_norm_rms_epsilon", 1e-5);
  c.rope_theta = float_key(g, p + "rope.freq_base", 10000.0);
  c.rope_style = arch.gguf_rope_style;
  c.qkv_bias = arch.qkv_bias;
  c.qk_norm = arch.qk_norm;
  c.sliding_window = static_cast<int>(g.get_int(p + "attention.sliding_window").value_or(0));
  if (arch.mla) read_mla(g, p, c);
  if (auto rd = g.get_int(p + "rope.dimension_count"); rd && *rd != c.rope_dim()) {
    fail("'{}': partial rotary embeddings ({} of {} dims) are not supported", g.path(), *rd,
         c.head_dim);
  }
  if (arch.moe) read_moe(g, arch, c);
  return c;
}

void read_rope_factors(const GgufFile& g, ModelConfig& c) {
  const TensorView* f = g.find_tensor("rope_freqs.weight");
  if (!f) return;
  if (f->numel() != c.head_dim / 2 || f->dtype != DType::F32) {
    fail("'{}': tensor 'rope_freqs.weight' has shape {} ({}), expected [{}] F32", g.path(),
         f->shape_str(), dtype_name(f->dtype), c.head_dim / 2);
  }
  c.rope_freq_factors.resize(static_cast<size_t>(c.head_dim / 2));
  cpu::dequantize_row(DType::F32, f->data, c.rope_freq_factors.data(), c.head_dim / 2);
}

}  // namespace

std::unique_ptr<Model> load_gguf_model(const std::string& path) {
  auto m = std::make_unique<Model>();
  m->path = path;
  m->format = "gguf";
  m->gguf = std::make_unique<GgufFile>(path);
  const GgufFile& g = *m->gguf;
  const std::string arch_name = g.get_string("general.architecture").value_or("");
  if (arch_name.empty()) fail("'{}': missing metadata key 'general.architecture'", path);
  const bool has_experts = g.get_int(arch_name + ".expert_count").value_or(0) > 0;
  const Architecture& arch = find_architecture(arch_name, path, has_experts);
  m->config = read_config(g, arch);
  read_rope_factors(g, m->config);
  m->tokenizer = tokenizer_spec_from_gguf(g);
  m->config.vocab_size = static_cast<int>(m->tokenizer.tokens.size());
  if (const TensorView* e = g.find_tensor("token_embd.weight")) {
    m->config.vocab_size = static_cast<int>(e->ne[1]);
  }
  m->config.validate(path);
  m->chat_template = g.get_string("tokenizer.chat_template");
  m->weights = bind_weights(
      m->config, [&g](const std::string& n) { return g.find_tensor(n); }, m->owned, path);
  return m;
}

}  // namespace shardlm
