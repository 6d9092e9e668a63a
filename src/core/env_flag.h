// On/off switches read from the environment (SHARDLM_STEP_PROFILE=1, SHARDLM_CUDA_MIXED_SPLIT=0):
// unset or empty gives the default, "0" is off, anything else on.
#pragma once

#include <cstdlib>
#include <string_view>

namespace shardlm {

inline bool env_flag(const char* name, bool default_value) {
  const char* v = std::getenv(name);
  if (!v || !*v) return default_value;
  return std::string_view(v) != "0";
}

}  // namespace shardlm
