// The registry of supported architectures. Each architecture lives in its own file under arch/
// and describes how it differs from the shared llama-style decoder block; the registry is the only
// place that lists them.
#pragma once

#include <string>
#include <vector>

#include "model/model_config.h"

namespace shardlm {

struct Architecture {
  std::string name;                         // GGUF general.architecture
  std::vector<std::string> hf_model_types;  // config.json model_type values
  bool qkv_bias = false;                    // q/k/v projections carry biases
  bool qk_norm = false;                     // per-head RMSNorm on q and k before rope
  RopeStyle gguf_rope_style = RopeStyle::kNormal;
};

// Looks up by GGUF architecture name; throws Error listing the supported names.
const Architecture& find_architecture(const std::string& gguf_name, const std::string& source);
// Looks up by Hugging Face model_type; throws Error listing the supported types.
const Architecture& find_hf_architecture(const std::string& model_type, const std::string& source);
const std::vector<Architecture>& all_architectures();

// One function per architecture file.
Architecture llama_architecture();
Architecture mistral_architecture();
Architecture qwen2_architecture();
Architecture qwen3_architecture();

}  // namespace shardlm
