// Loads a Hugging Face model directory: config.json for hyper-parameters, model.safetensors or
// sharded model-0000N-of-0000M.safetensors (with model.safetensors.index.json) for weights,
// tokenizer.json + tokenizer_config.json for the vocabulary and chat template.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "core/error.h"
#include "model/architecture.h"
#include "model/fp8_at_bind.h"
#include "model/fp8_checkpoint.h"
#include "model/hf_config.h"
#include "model/model.h"
#include "tokenizer/tokenizer_json.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

// A routed expert's matrix -> llama.cpp's per-expert name "blk.N.ffn_{gate,up,down}.E.weight"
// (the stacked GGUF form ffn_*_exps is bound by the same code); "" for anything else.
std::string expert_name(const std::string& layer, const std::string& rest) {
  static const std::regex expert_re(
      R"((?:mlp|block_sparse_moe)\.experts\.(\d+)\.(gate_proj|up_proj|down_proj|w1|w2|w3)\.weight)");
  static const std::map<std::string, std::string> kind = {
      {"gate_proj", "ffn_gate"}, {"up_proj", "ffn_up"}, {"down_proj", "ffn_down"},
      {"w1", "ffn_gate"},        {"w3", "ffn_up"},      {"w2", "ffn_down"}};
  std::smatch m;
  if (!std::regex_match(rest, m, expert_re)) return "";
  return fmt::format("blk.{}.{}.{}.weight", layer, kind.at(m[2].str()), m[1].str());
}

// Hugging Face tensor name -> canonical (GGUF) name; empty when the tensor is not used.
std::string canonical_name(const std::string& hf) {
  static const std::regex layer_re(R"(model\.layers\.(\d+)\.(.+))");
  static const std::map<std::string, std::string> top = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string> layer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      // Mixture of experts: the router (qwen2_moe/qwen3_moe, mixtral) and qwen2_moe's shared
      // expert with its gate.
      {"mlp.gate.weight", "ffn_gate_inp.weight"},
      {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
      {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"},
      {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"},
      {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"},
      {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"},
      // deepseek and ernie: ungated shared experts, the routers' correction bias.
      {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight"},
      {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight"},
      {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight"},
      {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias"},
      {"mlp.moe_statics.e_score_correction_bias", "exp_probs_b.bias"},
      // Multi-head latent attention (llama.cpp's deepseek2 names).
      {"self_attn.q_a_proj.weight", "attn_q_a.weight"},
      {"self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight"},
      {"self_attn.q_b_proj.weight", "attn_q_b.weight"},
      {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight"},
      {"self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight"},
      {"self_attn.kv_b_proj.weight", "attn_kv_b.weight"}};
  if (auto it = top.find(hf); it != top.end()) return it->second;
  std::smatch m;
  if (std::regex_match(hf, m, layer_re)) {
    if (auto it = layer.find(m[2].str()); it != layer.end()) {
      return fmt::format("blk.{}.{}", m[1].str(), it->second);
    }
    return expert_name(m[1].str(), m[2].str());
  }
  return "";
}

std::vector<std::string> shard_files(const std::string& dir) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index)) {
    const auto j = read_json_file(index.string());
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
      fail("'{}': missing the weight_map object", index.string());
    }
    std::set<std::string> files;
    for (const auto& f : j["weight_map"]) {
      if (!f.is_string()) fail("'{}': weight_map values must be file names", index.string());
      const std::string name = f.get<std::string>();
      if (name.find('/') != std::string::npos || name.find("..") != std::string::npos) {
        fail("'{}': weight_map names file '{}' outside the model directory", index.string(), name);
      }
      files.insert((fs::path(dir) / name).string());
    }
    return {files.begin(), files.end()};
  }
  const fs::path single = fs::path(dir) / "model.safetensors";
  if (!fs::exists(single)) {
    fail(
        "'{}': no model.safetensors or model.safetensors.index.json; is this a Hugging Face model "
        "directory?",
        dir);
  }
  return {single.string()};
}

}  // namespace

void load_hf_chat_template(Model& m, const std::string& dir) {
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja)) {
    std::ifstream in(jinja);
    m.chat_template = std::string(std::istreambuf_iterator<char>(in), {});
    return;
  }
  const fs::path cfg = fs::path(dir) / "tokenizer_config.json";
  if (!fs::exists(cfg)) return;
  const auto j = read_json_file(cfg.string());
  if (!j.contains("chat_template")) return;
  const auto& t = j["chat_template"];
  if (t.is_string()) {
    m.chat_template = t.get<std::string>();
  } else if (t.is_array()) {  // [{"name": "default", "template": "..."}, ...]
    for (const auto& e : t) {
      if (e.value("name", "") == "default" && e.contains("template") && e["template"].is_string()) {
        m.chat_template = e["template"].get<std::string>();
      }
    }
  }
}

std::unique_ptr<Model> load_hf_model(const std::string& dir) {
  auto m = std::make_unique<Model>();
  m->path = dir;
  m->format = "safetensors";
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const nlohmann::json config = read_json_file(config_path);
  m->config = hf_config_from_json(config, config_path);
  const Fp8CheckpointConfig fp8 = read_fp8_checkpoint_config(config, config_path);
  std::map<std::string, const TensorView*> by_name, by_file_name;
  for (const auto& file : shard_files(dir)) {
    m->shards.push_back(std::make_unique<SafetensorsFile>(file));
    for (const auto& t : m->shards.back()->tensors()) {
      by_file_name[t.name] = &t;
      const std::string name = canonical_name(t.name);
      if (!name.empty()) by_name[name] = &t;
    }
  }
  m->config.validate(config_path);
  m->tokenizer = load_tokenizer_json(dir);
  load_hf_chat_template(*m, dir);
  const FileTensorLookup by_file = [&by_file_name](const std::string& n) -> const TensorView* {
    auto it = by_file_name.find(n);
    return it == by_file_name.end() ? nullptr : it->second;
  };
  Fp8BindView fp8_view(fp8, by_file, *m);
  m->weights = bind_weights(
      m->config,
      [&by_name, &fp8_view](const std::string& n) -> const TensorView* {
        auto it = by_name.find(n);
        return fp8_view(n, it == by_name.end() ? nullptr : it->second);
      },
      m->owned, dir);
  if (fp8_view.matrices() > 0) {
    spdlog::info("'{}': FP8 checkpoint ({}): {} matrices bound as the file holds them", dir,
                 fp8.describe(), fp8_view.matrices());
  }
  return m;
}

}  // namespace shardlm
