// A loaded model: config, tokenizer spec, bound weights, chat template, and the storage that keeps
// the weights alive (memory-mapped files plus small fp32 copies). Immutable after loading.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/fp8.h"
#include "formats/gguf_file.h"
#include "formats/safetensors_file.h"
#include "model/model_config.h"
#include "model/weights.h"
#include "tokenizer/tokenizer_spec.h"

namespace shardlm {

struct Model {
  std::string path;
  std::string format;  // "gguf", "safetensors" or "dummy"
  ModelConfig config;
  TokenizerSpec tokenizer;
  ModelWeights weights;
  std::optional<std::string> chat_template;

  // Storage.
  std::unique_ptr<GgufFile> gguf;
  std::vector<std::unique_ptr<SafetensorsFile>> shards;
  std::deque<std::vector<float>> owned;
  std::vector<std::unique_ptr<uint16_t[]>> generated;  // dummy BF16 matrices (dummy_model.h)
  std::deque<Fp8Scales> fp8_scales;  // an FP8 checkpoint's scales, which its views point to

  size_t weight_bytes() const;  // bytes of all tensors the model uses
  // Every weight matrix the model uses (the embedding, the output unless tied, each layer's).
  void for_each_matrix(const std::function<void(const TensorView&)>& fn) const;
  std::vector<std::pair<std::string, int>> tensor_type_counts() const;
};

// Loads a .gguf file or a Hugging Face directory (config.json + safetensors + tokenizer.json).
// Throws Error naming the file and the problem.
std::unique_ptr<Model> load_model(const std::string& path);
// As above for load_format "auto"; "dummy" generates weights for a preset or config.json
// (dummy_model.h). Other formats are an Error listing the known ones.
std::unique_ptr<Model> load_model(const std::string& path, const std::string& load_format);
std::unique_ptr<Model> load_gguf_model(const std::string& path);
std::unique_ptr<Model> load_hf_model(const std::string& dir);
// Sets m.chat_template from dir's chat_template.jinja or tokenizer_config.json, when present.
void load_hf_chat_template(Model& m, const std::string& dir);

}  // namespace shardlm
