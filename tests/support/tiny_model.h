// Test support: tiny llama/qwen2/qwen3/qwen3_moe/mixtral models with deterministic weights, written
// as a Hugging Face directory (config.json + BF16 safetensors + tokenizer.json) or a GGUF file. The
// weight formula (det_weights) is mirrored in scripts/gen_logit_refs.py, which computes the
// reference logits with PyTorch/transformers.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "safetensors_writer.h"

namespace shardlm::testing {

struct TinyModelSpec {
  std::string arch = "llama";  // llama | qwen2 | qwen3 | mistral | qwen3_moe | qwen2_moe | mixtral
                               // | deepseek_v2 | deepseek_v3 | ernie4_5_moe
  int d_model = 64;
  int n_layers = 2;
  int n_heads = 4;
  int n_kv_heads = 2;
  int head_dim = 16;
  int ffn_dim = 96;
  int vocab = 288;  // 256 byte tokens + specials + padding
  bool tied = true;
  float rope_theta = 10000.f;
  bool llama3_scaling = false;  // factor 8, low 1, high 4, original context 32
  float norm_eps = 1e-5f;
  int context = 256;
  // Mixture of experts (qwen3_moe, qwen2_moe, mixtral): n_experts of width moe_ffn (mixtral:
  // ffn_dim), top_k per token; dense_layers keep the dense FFN (qwen3_moe's mlp_only_layers).
  int n_experts = 0;
  int top_k = 2;
  int moe_ffn = 32;
  bool norm_topk = true;
  int shared_ffn = 0;        // qwen2_moe: the shared expert's width
  int gguf_gating_func = 0;  // GGUF "<arch>.expert_gating_func" when not 0 (llama.cpp's enum)
  std::vector<int> dense_layers;
  // deepseek_v2/v3 and ernie4_5_moe: n_shared ungated shared experts of width moe_ffn, a router
  // correction bias (deepseek_v3, ernie), group-limited routing, the routed weights' scale.
  int n_shared = 0;
  bool score_bias = false;
  int n_groups = 1, topk_groups = 1;
  float routed_scale = 1.f;
  // Multi-head latent attention (deepseek_v2/v3; kv_lora 0: none) and its YaRN rope scaling.
  int q_lora = 0, kv_lora = 0, nope = 0, rope = 0, v_head = 0;
  bool yarn = false;
  float yarn_mscale = 1.f, yarn_mscale_all = 1.f;

  bool is_moe_layer(int layer) const;
  bool is_mla() const { return kv_lora > 0; }
  int expert_ffn() const { return arch == "mixtral" ? ffn_dim : moe_ffn; }
};

// A tiny spec of each mixture-of-experts architecture (4 or 8 experts, top-2 or top-3; deepseek
// with multi-head latent attention).
TinyModelSpec tiny_moe_spec(const std::string& arch);

// The dense models whose reference logits are committed in tests/data/logits/tiny_<name>.json
// (their weights mirrored by scripts/gen_logit_refs.py).
std::vector<std::pair<std::string, TinyModelSpec>> reference_tiny_models();
// The mixture-of-experts models with committed reference logits (tiny_<name>.json): the script
// has transformers load the directory `shardlm_tiny_model --hf --reference NAME` writes.
std::vector<std::pair<std::string, TinyModelSpec>> reference_tiny_moe_models();
// The same for deepseek_v2, deepseek_v3 (multi-head latent attention) and ernie4_5_moe (a dense
// first layer, then MoE layers with shared experts), in tiny_<arch>.json.
std::vector<std::pair<std::string, TinyModelSpec>> reference_tiny_mla_models();

// Deterministic weights in [-scale, scale): splitmix64 over (fnv1a(name) + i).
std::vector<float> det_weights(const std::string& name, int64_t n, float scale, float offset = 0.f);

// Every canonical (GGUF-named) tensor of the model with its GGML shape and values.
struct NamedTensor {
  std::string name;
  std::vector<int64_t> ne;
  std::vector<float> values;
};
std::vector<NamedTensor> tiny_model_tensors(const TinyModelSpec& spec);

void write_tiny_hf_model(const std::string& dir, const TinyModelSpec& spec);
// The same with the tensors (Hugging Face names, safetensors shapes; BF16 unless a tensor names
// its type) passed through `edit` before they are written, and extra_config's keys set in
// config.json (the FP8 checkpoints of tiny_fp8_model.h).
using HfTensorsEdit = std::function<void(std::vector<SafetensorsTensor>&)>;
void write_tiny_hf_model(const std::string& dir, const TinyModelSpec& spec, const HfTensorsEdit& edit,
                         const nlohmann::json& extra_config);
// weight_type applies to matrices; vectors stay F32. Experts are stacked as llama.cpp writes them
// (blk.N.ffn_{gate,up,down}_exps.weight, [cols, rows, n_experts]) unless per_expert_gguf. Q/K rows
// are permuted for interleaved rope when the architecture uses it in GGUF (llama), as llama.cpp's
// converter does.
void write_tiny_gguf_model(const std::string& path, const TinyModelSpec& spec, DType weight_type,
                           bool per_expert_gguf = false);

}  // namespace shardlm::testing
