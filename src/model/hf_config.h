// Reads a Hugging Face config.json into a ModelConfig (llama, mistral, qwen2, qwen3 families).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/model_config.h"

namespace shardlm {

ModelConfig hf_config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json read_json_file(const std::string& path);

}  // namespace shardlm
