// Named architectures as Hugging Face config.json objects, for `--load-format dummy` (benchmarks
// of large models without their files, as vLLM's dummy load format does). Shapes follow the public
// configs of the models they are named after.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace shardlm {

// The config.json of a preset ("llama-3.1-8b", ...), or nullopt for an unknown name.
std::optional<nlohmann::json> model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

}  // namespace shardlm
