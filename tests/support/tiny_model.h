// Test support: tiny llama/qwen2/qwen3 models with deterministic weights, written as a Hugging
// Face directory (config.json + BF16 safetensors + tokenizer.json) or a GGUF file. The weight
// formula (det_weights) is mirrored in scripts/gen_logit_refs.py, which computes the reference
// logits with PyTorch/transformers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace shardlm::testing {

struct TinyModelSpec {
  std::string arch = "llama";  // llama | qwen2 | qwen3 | mistral
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
};

// The three models whose reference logits are committed in tests/data/logits/tiny_<name>.json.
std::vector<std::pair<std::string, TinyModelSpec>> reference_tiny_models();

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
// weight_type applies to 2-D matrices; vectors stay F32. Q/K rows are permuted for interleaved
// rope when the architecture uses it in GGUF (llama), as llama.cpp's converter does.
void write_tiny_gguf_model(const std::string& path, const TinyModelSpec& spec, DType weight_type);

}  // namespace shardlm::testing
