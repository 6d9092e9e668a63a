// Tiny deterministic models for tests (see tiny_model.h).
#include "tiny_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "gguf_writer.h"
#include "safetensors_writer.h"
#include "tokenizer/byte_vocab.h"

namespace shardlm::testing {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::vector<std::string> vocab_tokens(int vocab) {
  auto t = gpt2_byte_tokens();
  t.push_back("<|bos|>");
  t.push_back("<|eos|>");
  while (static_cast<int>(t.size()) < vocab)
    t.push_back("<|extra_" + std::to_string(t.size()) + "|>");
  return t;
}

void add(std::vector<NamedTensor>& out, const std::string& name, std::vector<int64_t> ne,
         float scale, float offset = 0.f) {
  int64_t n = 1;
  for (auto d : ne) n *= d;
  out.push_back({name, std::move(ne), det_weights(name, n, scale, offset)});
}

const std::map<std::string, std::string>& hf_layer_names() {
  static const std::map<std::string, std::string> m = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
      {"ffn_gate_shexp.weight", "mlp.shared_expert.gate_proj.weight"},
      {"ffn_up_shexp.weight", "mlp.shared_expert.up_proj.weight"},
      {"ffn_down_shexp.weight", "mlp.shared_expert.down_proj.weight"},
      {"ffn_gate_inp_shexp.weight", "mlp.shared_expert_gate.weight"},
      {"attn_q_a.weight", "self_attn.q_a_proj.weight"},
      {"attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight"},
      {"attn_q_b.weight", "self_attn.q_b_proj.weight"},
      {"attn_kv_a_mqa.weight", "self_attn.kv_a_proj_with_mqa.weight"},
      {"attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight"},
      {"attn_kv_b.weight", "self_attn.kv_b_proj.weight"}};
  return m;
}

// deepseek's and ernie's shared experts and router bias under their Hugging Face names.
std::string hf_shared_name(const std::string& suffix, const std::string& arch) {
  if (suffix == "exp_probs_b.bias") {
    return arch == "ernie4_5_moe" ? "mlp.moe_statics.e_score_correction_bias"
                                  : "mlp.gate.e_score_correction_bias";
  }
  static const std::map<std::string, std::string> m = {
      {"ffn_gate_shexp.weight", "mlp.shared_experts.gate_proj.weight"},
      {"ffn_up_shexp.weight", "mlp.shared_experts.up_proj.weight"},
      {"ffn_down_shexp.weight", "mlp.shared_experts.down_proj.weight"}};
  const auto it = m.find(suffix);
  return it == m.end() ? "" : it->second;
}

bool ungated_shared(const std::string& arch) {
  return arch == "deepseek_v2" || arch == "deepseek_v3" || arch == "ernie4_5_moe";
}

// A mixture-of-experts tensor's Hugging Face name within its layer: the router, or expert E's
// matrix from the per-expert canonical name "ffn_gate.E.weight".
std::string hf_moe_name(const std::string& suffix, const std::string& arch) {
  const bool mixtral = arch == "mixtral";
  const std::string block = mixtral ? "block_sparse_moe." : "mlp.";
  if (suffix == "ffn_gate_inp.weight") return block + "gate.weight";
  const size_t dot1 = suffix.find('.'), dot2 = suffix.find('.', dot1 + 1);
  const std::string kind = suffix.substr(0, dot1),
                    expert = suffix.substr(dot1 + 1, dot2 - dot1 - 1);
  static const std::map<std::string, std::pair<std::string, std::string>> names = {
      {"ffn_gate", {"gate_proj", "w1"}},
      {"ffn_up", {"up_proj", "w3"}},
      {"ffn_down", {"down_proj", "w2"}}};
  const auto& [qwen_name, mixtral_name] = names.at(kind);
  return block + "experts." + expert + "." + (mixtral ? mixtral_name : qwen_name) + ".weight";
}

std::string hf_name(const std::string& canonical, const std::string& arch) {
  if (canonical == "token_embd.weight") return "model.embed_tokens.weight";
  if (canonical == "output_norm.weight") return "model.norm.weight";
  if (canonical == "output.weight") return "lm_head.weight";
  const size_t dot1 = canonical.find('.'), dot2 = canonical.find('.', dot1 + 1);
  const std::string layer = canonical.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string suffix = canonical.substr(dot2 + 1);
  if (ungated_shared(arch) && !hf_shared_name(suffix, arch).empty()) {
    return "model.layers." + layer + "." + hf_shared_name(suffix, arch);
  }
  const auto it = hf_layer_names().find(suffix);
  return "model.layers." + layer + "." +
         (it != hf_layer_names().end() ? it->second : hf_moe_name(suffix, arch));
}

// GGUF general.architecture of a tiny spec's arch, as llama.cpp names it.
std::string gguf_arch(const std::string& arch) {
  if (arch == "qwen3_moe") return "qwen3moe";
  if (arch == "qwen2_moe") return "qwen2moe";
  if (arch == "mixtral") return "llama";
  if (arch == "deepseek_v2" || arch == "deepseek_v3") return "deepseek2";
  if (arch == "ernie4_5_moe") return "ernie4_5-moe";
  return arch;
}

void add_deepseek_config(nlohmann::json& c, const TinyModelSpec& s) {
  const bool v3 = s.arch == "deepseek_v3";
  c["n_routed_experts"] = s.n_experts;
  c["num_experts_per_tok"] = s.top_k;
  c["moe_intermediate_size"] = s.moe_ffn;
  c["n_shared_experts"] = s.n_shared;
  c["first_k_dense_replace"] = s.dense_layers.size();  // the dense layers come first
  c["norm_topk_prob"] = s.norm_topk;
  c["routed_scaling_factor"] = s.routed_scale;
  c["n_group"] = s.n_groups;
  c["topk_group"] = s.topk_groups;
  c["topk_method"] = v3 ? "noaux_tc" : (s.n_groups > 1 ? "group_limited_greedy" : "greedy");
  if (v3) c["scoring_func"] = "sigmoid";
  c["q_lora_rank"] = s.q_lora > 0 ? nlohmann::json(s.q_lora) : nlohmann::json(nullptr);
  c["kv_lora_rank"] = s.kv_lora;
  c["qk_nope_head_dim"] = s.nope;
  c["qk_rope_head_dim"] = s.rope;
  c["v_head_dim"] = s.v_head;
  c.erase("head_dim");
  if (s.yarn) {
    c["rope_scaling"] = {{"type", "yarn"},
                         {"factor", 4.0},
                         {"original_max_position_embeddings", s.context / 4},
                         {"beta_fast", 32},
                         {"beta_slow", 1},
                         {"mscale", s.yarn_mscale},
                         {"mscale_all_dim", s.yarn_mscale_all}};
  }
}

nlohmann::json hf_config(const TinyModelSpec& s) {
  nlohmann::json c = {{"model_type", s.arch},
                      {"hidden_size", s.d_model},
                      {"num_hidden_layers", s.n_layers},
                      {"num_attention_heads", s.n_heads},
                      {"num_key_value_heads", s.n_kv_heads},
                      {"head_dim", s.head_dim},
                      {"intermediate_size", s.ffn_dim},
                      {"vocab_size", s.vocab},
                      {"max_position_embeddings", s.context},
                      {"rms_norm_eps", s.norm_eps},
                      {"rope_theta", s.rope_theta},
                      {"tie_word_embeddings", s.tied},
                      {"bos_token_id", 256},
                      {"eos_token_id", 257}};
  if (s.arch == "qwen3_moe" || s.arch == "qwen2_moe") {
    c["num_experts"] = s.n_experts;
    c["num_experts_per_tok"] = s.top_k;
    c["moe_intermediate_size"] = s.moe_ffn;
    c["norm_topk_prob"] = s.norm_topk;
    c["decoder_sparse_step"] = 1;
    c["mlp_only_layers"] = s.dense_layers;
    c["router_aux_loss_coef"] = 0.001;
    if (s.shared_ffn > 0) c["shared_expert_intermediate_size"] = s.shared_ffn;
  } else if (s.arch == "mixtral") {
    c["num_local_experts"] = s.n_experts;
    c["num_experts_per_tok"] = s.top_k;
    c["sliding_window"] = nullptr;
  } else if (s.arch == "deepseek_v2" || s.arch == "deepseek_v3") {
    add_deepseek_config(c, s);
  } else if (s.arch == "ernie4_5_moe") {
    c["moe_num_experts"] = s.n_experts;
    c["moe_k"] = s.top_k;
    c["moe_intermediate_size"] = s.moe_ffn;
    c["moe_num_shared_experts"] = s.n_shared;
    c["moe_layer_start_index"] = s.dense_layers.size();  // the dense layers come first
    c["moe_layer_end_index"] = -1;
    c["moe_layer_interval"] = 1;
    c["use_bias"] = false;
  }
  if (s.llama3_scaling) {
    c["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 32}};
  }
  return c;
}

nlohmann::json hf_tokenizer(const TinyModelSpec& s) {
  const auto tokens = vocab_tokens(s.vocab);
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 0; i < 256; ++i) vocab[tokens[i]] = i;
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 256; i < tokens.size(); ++i) {
    vocab[tokens[i]] = i;
    added.push_back({{"id", i},
                     {"content", tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "ByteLevel"},
            {"add_prefix_space", false},
            {"trim_offsets", true},
            {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder",
           {{"type", "ByteLevel"},
            {"add_prefix_space", true},
            {"trim_offsets", true},
            {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", nlohmann::json::array()}}}};
}

void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
  std::ofstream f(p);
  f << j.dump(2);
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

// llama.cpp's converter reorders each head's rows from halves (neox) to interleaved pairs.
std::vector<float> permute_for_interleaved_rope(const std::vector<float>& w, int64_t in, int heads,
                                                int head_dim) {
  std::vector<float> out(w.size());
  const int half = head_dim / 2;
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < half; ++i) {
      for (int j = 0; j < 2; ++j) {
        const int64_t dst = static_cast<int64_t>(h) * head_dim + 2 * i + j;
        const int64_t src = static_cast<int64_t>(h) * head_dim + j * half + i;
        std::copy(w.begin() + src * in, w.begin() + (src + 1) * in, out.begin() + dst * in);
      }
    }
  }
  return out;
}

// The router (scaled up so that routing decisions are clear-cut) and each expert's SwiGLU
// matrices under llama.cpp's per-expert names.
void add_experts(std::vector<NamedTensor>& t, const TinyModelSpec& s, const std::string& p) {
  const int64_t d = s.d_model, f = s.expert_ffn();
  add(t, p + "ffn_gate_inp.weight", {d, s.n_experts}, 2.f / std::sqrt(static_cast<float>(d)));
  for (int e = 0; e < s.n_experts; ++e) {
    const std::string x = "." + std::to_string(e) + ".weight";
    add(t, p + "ffn_gate" + x, {d, f}, 1.f / std::sqrt(static_cast<float>(d)));
    add(t, p + "ffn_up" + x, {d, f}, 1.f / std::sqrt(static_cast<float>(d)));
    add(t, p + "ffn_down" + x, {f, d}, 1.f / std::sqrt(static_cast<float>(f)));
  }
  if (s.score_bias) {  // ernie's moe_statics is [1, n_experts]
    std::vector<int64_t> ne = {s.n_experts};
    if (s.arch == "ernie4_5_moe") ne.push_back(1);
    add(t, p + "exp_probs_b.bias", ne, 0.05f);
  }
  const int64_t sf = s.n_shared > 0 ? int64_t{s.n_shared} * s.moe_ffn : s.shared_ffn;
  if (sf == 0) return;
  add(t, p + "ffn_gate_shexp.weight", {d, sf}, 1.f / std::sqrt(static_cast<float>(d)));
  add(t, p + "ffn_up_shexp.weight", {d, sf}, 1.f / std::sqrt(static_cast<float>(d)));
  add(t, p + "ffn_down_shexp.weight", {sf, d}, 1.f / std::sqrt(static_cast<float>(sf)));
  if (s.n_shared > 0) return;  // deepseek, ernie: ungated
  add(t, p + "ffn_gate_inp_shexp.weight", {d, 1}, 2.f / std::sqrt(static_cast<float>(d)));
}

// llama.cpp's stacked expert tensors: blk.N.ffn_gate.E.weight for every E -> one
// blk.N.ffn_gate_exps.weight of [cols, rows, n_experts] (the experts in order).
std::vector<NamedTensor> stack_experts(std::vector<NamedTensor> in, int n_experts) {
  std::vector<NamedTensor> out;
  std::map<std::string, size_t> stacked;  // stacked name -> index in out
  static const std::regex expert_re(R"((blk\.\d+\.ffn_(?:gate|up|down))\.\d+\.weight)");
  for (auto& t : in) {
    std::smatch m;
    if (!std::regex_match(t.name, m, expert_re)) {
      out.push_back(std::move(t));
      continue;
    }
    const std::string name = m[1].str() + "_exps.weight";
    auto [it, fresh] = stacked.emplace(name, out.size());
    if (fresh) out.push_back({name, {t.ne[0], t.ne[1], n_experts}, {}});
    auto& v = out[it->second].values;
    v.insert(v.end(), t.values.begin(), t.values.end());
  }
  return out;
}

}  // namespace

std::vector<float> det_weights(const std::string& name, int64_t n, float scale, float offset) {
  std::vector<float> v(static_cast<size_t>(n));
  const uint64_t base = fnv1a(name);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t z = splitmix64(base + static_cast<uint64_t>(i));
    const double u = static_cast<double>(z >> 40) / static_cast<double>(1 << 24);  // [0, 1)
    v[static_cast<size_t>(i)] = offset + scale * static_cast<float>(2.0 * u - 1.0);
  }
  return v;
}

std::vector<std::pair<std::string, TinyModelSpec>> reference_tiny_models() {
  TinyModelSpec llama;
  llama.llama3_scaling = true;
  TinyModelSpec qwen2;
  qwen2.arch = "qwen2";
  qwen2.n_kv_heads = 1;
  qwen2.ffn_dim = 128;
  qwen2.tied = false;
  qwen2.rope_theta = 1e6f;
  TinyModelSpec qwen3;
  qwen3.arch = "qwen3";
  qwen3.head_dim = 32;
  qwen3.rope_theta = 1e6f;
  qwen3.norm_eps = 1e-6f;
  return {{"llama", llama}, {"qwen2", qwen2}, {"qwen3", qwen3}};
}

bool TinyModelSpec::is_moe_layer(int layer) const {
  return n_experts > 0 &&
         std::find(dense_layers.begin(), dense_layers.end(), layer) == dense_layers.end();
}

TinyModelSpec tiny_moe_spec(const std::string& arch) {
  TinyModelSpec s;
  s.arch = arch;
  if (arch == "qwen3_moe") {
    s.head_dim = 32;
    s.rope_theta = 1e6f;
    s.norm_eps = 1e-6f;
    s.n_experts = 8;
    s.top_k = 3;
    s.moe_ffn = 32;
    s.ffn_dim = 64;
  } else if (arch == "qwen2_moe") {
    s.n_kv_heads = 1;
    s.rope_theta = 1e6f;
    s.tied = false;
    s.n_experts = 8;
    s.top_k = 2;
    s.moe_ffn = 32;
    s.norm_topk = false;
    s.shared_ffn = 64;
    s.ffn_dim = 96;
  } else if (arch == "mixtral") {
    s.n_experts = 4;
    s.top_k = 2;
    s.ffn_dim = 64;
    s.rope_theta = 1e6f;
    s.tied = false;
  } else if (arch == "deepseek_v2" || arch == "deepseek_v3") {
    s.n_heads = 4;
    s.n_kv_heads = 4;
    s.kv_lora = 32;
    s.nope = 16;
    s.rope = 8;
    s.v_head = 16;
    s.head_dim = s.nope + s.rope;
    s.norm_eps = 1e-6f;
    s.n_experts = 8;
    s.top_k = 2;
    s.moe_ffn = 32;
    s.n_shared = 1;
    s.n_groups = 4;
    s.topk_groups = 2;
    s.tied = false;
    s.yarn = true;
    if (arch == "deepseek_v2") {  // V2-Lite: no q_lora_rank, softmax group-limited routing
      s.norm_topk = false;
      s.routed_scale = 1.5f;
      s.yarn_mscale = s.yarn_mscale_all = 0.707f;
    } else {  // V3: q_lora_rank, sigmoid routing with the correction bias
      s.q_lora = 24;
      s.norm_topk = true;
      s.routed_scale = 2.5f;
      s.score_bias = true;
      s.yarn_mscale = 1.f;
      s.yarn_mscale_all = 0.8f;
    }
  } else if (arch == "ernie4_5_moe") {
    s.n_kv_heads = 2;
    s.rope_theta = 500000.f;
    s.n_experts = 8;
    s.top_k = 2;
    s.moe_ffn = 32;
    s.n_shared = 1;
    s.score_bias = true;
  } else {
    throw std::invalid_argument("tiny_moe_spec: '" + arch + "' is not a MoE architecture");
  }
  return s;
}

std::vector<std::pair<std::string, TinyModelSpec>> reference_tiny_mla_models() {
  std::vector<std::pair<std::string, TinyModelSpec>> out;
  for (const char* arch : {"deepseek_v2", "deepseek_v3", "ernie4_5_moe"}) {
    TinyModelSpec s = tiny_moe_spec(arch);
    s.n_layers = 3;
    s.dense_layers = {0};  // first_k_dense_replace / moe_layer_start_index 1
    out.emplace_back(arch, s);
  }
  return out;
}

std::vector<std::pair<std::string, TinyModelSpec>> reference_tiny_moe_models() {
  TinyModelSpec qwen3_moe = tiny_moe_spec("qwen3_moe");
  qwen3_moe.n_layers = 3;
  qwen3_moe.dense_layers = {1};  // a dense layer between two MoE layers (mlp_only_layers)
  TinyModelSpec qwen2_moe = tiny_moe_spec("qwen2_moe");
  qwen2_moe.n_layers = 3;
  qwen2_moe.dense_layers = {0};
  return {
      {"qwen3_moe", qwen3_moe}, {"mixtral", tiny_moe_spec("mixtral")}, {"qwen2_moe", qwen2_moe}};
}

namespace {

// Multi-head latent attention's projections (llama.cpp's deepseek2 names).
void add_mla(std::vector<NamedTensor>& t, const TinyModelSpec& s, const std::string& p) {
  const int64_t d = s.d_model, qk = int64_t{s.n_heads} * (s.nope + s.rope);
  auto scale = [](int64_t in) { return 1.f / std::sqrt(static_cast<float>(in)); };
  if (s.q_lora > 0) {
    add(t, p + "attn_q_a.weight", {d, s.q_lora}, scale(d));
    add(t, p + "attn_q_a_norm.weight", {s.q_lora}, 0.2f, 1.f);
    add(t, p + "attn_q_b.weight", {s.q_lora, qk}, scale(s.q_lora));
  } else {
    add(t, p + "attn_q.weight", {d, qk}, scale(d));
  }
  add(t, p + "attn_kv_a_mqa.weight", {d, s.kv_lora + s.rope}, scale(d));
  add(t, p + "attn_kv_a_norm.weight", {s.kv_lora}, 0.2f, 1.f);
  add(t, p + "attn_kv_b.weight", {s.kv_lora, int64_t{s.n_heads} * (s.nope + s.v_head)},
      scale(s.kv_lora));
  add(t, p + "attn_output.weight", {int64_t{s.n_heads} * s.v_head, d},
      scale(int64_t{s.n_heads} * s.v_head));
}

void add_ffn(std::vector<NamedTensor>& t, const TinyModelSpec& s, int l, const std::string& p) {
  const int64_t d = s.d_model, f = s.ffn_dim;
  add(t, p + "ffn_norm.weight", {d}, 0.2f, 1.f);
  if (s.is_moe_layer(l)) {
    add_experts(t, s, p);
    return;
  }
  add(t, p + "ffn_gate.weight", {d, f}, 1.f / std::sqrt(static_cast<float>(d)));
  add(t, p + "ffn_up.weight", {d, f}, 1.f / std::sqrt(static_cast<float>(d)));
  add(t, p + "ffn_down.weight", {f, d}, 1.f / std::sqrt(static_cast<float>(f)));
}

}  // namespace

std::vector<NamedTensor> tiny_model_tensors(const TinyModelSpec& s) {
  std::vector<NamedTensor> t;
  const int64_t d = s.d_model, q = static_cast<int64_t>(s.n_heads) * s.head_dim,
                kv = static_cast<int64_t>(s.n_kv_heads) * s.head_dim, f = s.ffn_dim;
  add(t, "token_embd.weight", {d, s.vocab}, 1.f);
  add(t, "output_norm.weight", {d}, 0.2f, 1.f);
  if (!s.tied) add(t, "output.weight", {d, s.vocab}, 1.f / std::sqrt(static_cast<float>(d)));
  for (int l = 0; l < s.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(t, p + "attn_norm.weight", {d}, 0.2f, 1.f);
    if (s.is_mla()) {
      add_mla(t, s, p);
      add_ffn(t, s, l, p);
      continue;
    }
    add(t, p + "attn_q.weight", {d, q}, 1.f / std::sqrt(static_cast<float>(d)));
    add(t, p + "attn_k.weight", {d, kv}, 1.f / std::sqrt(static_cast<float>(d)));
    add(t, p + "attn_v.weight", {d, kv}, 1.f / std::sqrt(static_cast<float>(d)));
    add(t, p + "attn_output.weight", {q, d}, 1.f / std::sqrt(static_cast<float>(q)));
    if (s.arch == "qwen2" || s.arch == "qwen2_moe") {
      add(t, p + "attn_q.bias", {q}, 0.2f);
      add(t, p + "attn_k.bias", {kv}, 0.2f);
      add(t, p + "attn_v.bias", {kv}, 0.2f);
    }
    if (s.arch == "qwen3" || s.arch == "qwen3_moe") {
      add(t, p + "attn_q_norm.weight", {s.head_dim}, 0.2f, 1.f);
      add(t, p + "attn_k_norm.weight", {s.head_dim}, 0.2f, 1.f);
    }
    add(t, p + "ffn_norm.weight", {d}, 0.2f, 1.f);
    if (s.is_moe_layer(l)) {
      add_experts(t, s, p);
      continue;
    }
    add(t, p + "ffn_gate.weight", {d, f}, 1.f / std::sqrt(static_cast<float>(d)));
    add(t, p + "ffn_up.weight", {d, f}, 1.f / std::sqrt(static_cast<float>(d)));
    add(t, p + "ffn_down.weight", {f, d}, 1.f / std::sqrt(static_cast<float>(f)));
  }
  return t;
}

void write_tiny_hf_model(const std::string& dir, const TinyModelSpec& s) {
  write_tiny_hf_model(dir, s, {}, nlohmann::json::object());
}

void write_tiny_hf_model(const std::string& dir, const TinyModelSpec& s, const HfTensorsEdit& edit,
                         const nlohmann::json& extra_config) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  std::vector<SafetensorsTensor> st;
  for (auto& t : tiny_model_tensors(s)) {
    std::vector<int64_t> shape(t.ne.rbegin(), t.ne.rend());
    st.push_back({hf_name(t.name, s.arch), shape, std::move(t.values)});
  }
  if (edit) edit(st);
  write_safetensors((fs::path(dir) / "model.safetensors").string(), st, DType::BF16);
  nlohmann::json config = hf_config(s);
  config.update(extra_config);
  write_json(fs::path(dir) / "config.json", config);
  write_json(fs::path(dir) / "tokenizer.json", hf_tokenizer(s));
  write_json(fs::path(dir) / "tokenizer_config.json",
             {{"bos_token", "<|bos|>"}, {"eos_token", "<|eos|>"}, {"add_bos_token", false}});
}

namespace {

// llama.cpp's deepseek2 keys (as its converter writes them for the expanded kv_b form).
void add_deepseek2_keys(GgufWriter& w, const TinyModelSpec& s) {
  const std::string a = "deepseek2.";
  if (s.q_lora > 0) w.set(a + "attention.q_lora_rank", static_cast<uint32_t>(s.q_lora));
  w.set(a + "attention.kv_lora_rank", static_cast<uint32_t>(s.kv_lora));
  w.set(a + "attention.value_length", static_cast<uint32_t>(s.v_head));
  w.set(a + "rope.dimension_count", static_cast<uint32_t>(s.rope));
  w.set(a + "leading_dense_block_count", static_cast<uint32_t>(s.dense_layers.size()));
  w.set(a + "expert_shared_count", static_cast<uint32_t>(s.n_shared));
  w.set(a + "expert_weights_scale", s.routed_scale);
  w.set(a + "expert_gating_func", static_cast<uint32_t>(s.score_bias ? 2 : 1));
  w.set(a + "expert_group_count", static_cast<uint32_t>(s.n_groups));
  w.set(a + "expert_group_used_count", static_cast<uint32_t>(s.topk_groups));
  if (!s.yarn) return;
  w.set(a + "rope.scaling.type", std::string("yarn"));
  w.set(a + "rope.scaling.factor", 4.f);
  w.set(a + "rope.scaling.original_context_length", static_cast<uint32_t>(s.context / 4));
  w.set(a + "rope.scaling.yarn_log_multiplier", 0.1f * s.yarn_mscale_all);
}

// llama.cpp's ernie4_5-moe keys as its converter writes them: the dense layers lead, then every
// layer is a mixture with n_shared experts' worth of shared width (its converter derives that
// width as intermediate_size / num_key_value_heads, equal to n_shared x moe_ffn for the published
// models; the tiny spec's dense width is not, so the width is written as it is).
void add_ernie_keys(GgufWriter& w, const TinyModelSpec& s) {
  const std::string a = "ernie4_5-moe.";
  for (size_t i = 0; i < s.dense_layers.size(); ++i) {
    if (s.dense_layers[i] != static_cast<int>(i)) {
      throw std::invalid_argument("ernie4_5-moe GGUF files have leading dense layers only");
    }
  }
  w.set(a + "leading_dense_block_count", static_cast<uint32_t>(s.dense_layers.size()));
  w.set(a + "interleave_moe_layer_step", static_cast<uint32_t>(1));
  w.set(a + "expert_shared_count", static_cast<uint32_t>(s.n_shared));
  if (s.n_shared > 0) {
    w.set(a + "expert_shared_feed_forward_length", static_cast<uint32_t>(s.n_shared * s.moe_ffn));
  }
}

}  // namespace

void write_tiny_gguf_model(const std::string& path, const TinyModelSpec& s, DType weight_type,
                           bool per_expert_gguf) {
  GgufWriter w;
  const std::string a = gguf_arch(s.arch);
  w.set("general.architecture", a);
  w.set("general.name", std::string("tiny-") + a);
  w.set(a + ".block_count", static_cast<uint32_t>(s.n_layers));
  w.set(a + ".embedding_length", static_cast<uint32_t>(s.d_model));
  w.set(a + ".feed_forward_length", static_cast<uint32_t>(s.ffn_dim));
  w.set(a + ".attention.head_count", static_cast<uint32_t>(s.n_heads));
  w.set(a + ".attention.head_count_kv", static_cast<uint32_t>(s.n_kv_heads));
  w.set(a + ".attention.key_length", static_cast<uint32_t>(s.head_dim));
  // llama.cpp takes n_embd / n_head for a missing value_length (MLA files write their own).
  if (!s.is_mla()) w.set(a + ".attention.value_length", static_cast<uint32_t>(s.head_dim));
  w.set(a + ".context_length", static_cast<uint32_t>(s.context));
  w.set(a + ".rope.freq_base", s.rope_theta);
  w.set(a + ".attention.layer_norm_rms_epsilon", s.norm_eps);
  if (s.is_mla()) add_deepseek2_keys(w, s);
  if (s.arch == "ernie4_5_moe") add_ernie_keys(w, s);
  if (s.n_experts > 0) {
    if (!s.dense_layers.empty() && !s.is_mla() && s.arch != "ernie4_5_moe") {
      throw std::invalid_argument("GGUF mixture-of-experts models have no dense layers");
    }
    w.set(a + ".expert_count", static_cast<uint32_t>(s.n_experts));
    w.set(a + ".expert_used_count", static_cast<uint32_t>(s.top_k));
    if (s.arch != "mixtral") {
      w.set(a + ".expert_feed_forward_length", static_cast<uint32_t>(s.moe_ffn));
    }
    if (s.shared_ffn > 0) {
      w.set(a + ".expert_shared_feed_forward_length", static_cast<uint32_t>(s.shared_ffn));
    }
    w.set(a + ".expert_weights_norm", s.norm_topk);
    if (s.gguf_gating_func != 0) {
      w.set(a + ".expert_gating_func", static_cast<uint32_t>(s.gguf_gating_func));
    }
  }
  w.set("tokenizer.ggml.model", std::string("gpt2"));
  w.set("tokenizer.ggml.pre", std::string("gpt2"));
  w.set("tokenizer.ggml.tokens", vocab_tokens(s.vocab));
  w.set("tokenizer.ggml.merges", std::vector<std::string>{});
  w.set("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(256));
  w.set("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(257));
  const bool permute = a == "llama" || a == "mistral";
  auto tensors = tiny_model_tensors(s);
  if (s.n_experts > 0 && !per_expert_gguf) tensors = stack_experts(std::move(tensors), s.n_experts);
  for (auto& t : tensors) {
    if (permute && t.name.find("attn_q.weight") != std::string::npos) {
      t.values = permute_for_interleaved_rope(t.values, s.d_model, s.n_heads, s.head_dim);
    } else if (permute && t.name.find("attn_k.weight") != std::string::npos) {
      t.values = permute_for_interleaved_rope(t.values, s.d_model, s.n_kv_heads, s.head_dim);
    }
    const bool vector = t.ne.size() < 2 || t.name.ends_with(".bias");  // ernie's [1, n] bias
    // Rows that do not fill whole blocks stay F32, as llama.cpp's converter keeps them in float.
    const DType dt = vector || !row_fits_blocks(weight_type, t.ne[0]) ? DType::F32 : weight_type;
    w.add_tensor({t.name, t.ne, dt, std::move(t.values)});
  }
  if (s.llama3_scaling) {
    // llama.cpp stores llama3 scaling as precomputed per-frequency divisors.
    std::vector<float> f;
    const int half = s.head_dim / 2;
    for (int i = 0; i < half; ++i) {
      const double freq = std::pow(static_cast<double>(s.rope_theta), -2.0 * i / s.head_dim);
      const double wavelen = 2 * M_PI / freq;
      const double lo = 32.0 / 1.0, hi = 32.0 / 4.0;
      double div = wavelen < hi ? 1.0
                   : wavelen > lo
                       ? 8.0
                       : 1.0 / ((1 - (32.0 / wavelen - 1) / 3) / 8 + (32.0 / wavelen - 1) / 3);
      f.push_back(static_cast<float>(div));
    }
    w.add_tensor({"rope_freqs.weight", {half}, DType::F32, f});
  }
  w.write(path);
}

}  // namespace shardlm::testing
