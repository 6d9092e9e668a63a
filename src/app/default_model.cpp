// Default model resolution and fetching.
#include "app/default_model.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace shardlm::app {

namespace fs = std::filesystem;

namespace {
constexpr const char* kDefaultFile = "SmolLM2-135M-Instruct.Q4_1.gguf";
}

std::string model_cache_dir() {
  if (const char* dir = std::getenv("SHARDLM_MODEL_DIR"); dir && *dir) return dir;
  const char* home = std::getenv("HOME");
  return (fs::path(home && *home ? home : "/tmp") / ".cache" / "shardlm" / "models").string();
}

std::string default_model_path() {
  return (fs::path(model_cache_dir()) / kDefaultFile).string();
}

std::string resolve_model(const std::string& flag, const std::string& load_format) {
  return load_format == "dummy" ? flag : resolve_model(flag);
}

std::string resolve_model(const std::string& flag) {
  if (!flag.empty()) return flag;
  const std::string path = default_model_path();
  spdlog::info("no --model given; using the default model {}", path);
  if (fs::exists(path)) return path;
  const fs::path script = fs::path(SHARDLM_SOURCE_DIR) / "scripts" / "fetch_default_model.sh";
  if (!fs::exists(script)) {
    fail("the default model is not at {} and the fetch script is missing; pass --model PATH", path);
  }
  spdlog::info("fetching the default model with {}", script.string());
  const std::string cmd = "'" + script.string() + "' >&2";
  if (std::system(cmd.c_str()) != 0 || !fs::exists(path)) {
    fail("could not fetch the default model to {}; run {} by hand to see why, or pass --model PATH",
         path, script.string());
  }
  return path;
}

}  // namespace shardlm::app
