// Request defaults: generation_config.json's sampling fields and --seed.
#include "server/request_defaults.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "server/openai/api_error.h"
#include "server/openai/requests.h"

namespace shardlm::server {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSamplingFields[] = {"temperature", "top_p", "top_k", "min_p",
                                           "repetition_penalty"};

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool left_out(const Json& body, const char* field) {
  const auto it = body.find(field);
  return it == body.end() || it->is_null();
}

// The file the mode names; empty when there is none to read.
fs::path config_file(const std::string& mode, const std::string& model_path) {
  if (mode == "vllm") return {};
  if (mode == "auto") {
    const fs::path f = fs::path(model_path) / "generation_config.json";
    return fs::is_directory(model_path) && fs::exists(f) ? f : fs::path();
  }
  const fs::path f = fs::path(mode) / "generation_config.json";
  if (!fs::exists(f)) {
    fail(
        "--generation-config '{}': no generation_config.json there; give auto, vllm or a "
        "directory that holds one",
        mode);
  }
  return f;
}

}  // namespace

RequestDefaults::RequestDefaults(Json sampling, std::optional<uint64_t> seed)
    : sampling_(std::move(sampling)), seed_(seed) {}

void RequestDefaults::apply(Json& body) const {
  if (!body.is_object()) return;  // the parser names the problem
  for (const auto& [field, value] : sampling_.items()) {
    if (left_out(body, field.c_str())) body[field] = value;
  }
  if (seed_ && left_out(body, "seed")) {
    const uint64_t k = issued_.fetch_add(1, std::memory_order_relaxed);
    body["seed"] = static_cast<int64_t>(splitmix64(*seed_ ^ splitmix64(k)));
  }
}

Json generation_config_defaults(const std::string& mode, const std::string& model_path) {
  const fs::path file = config_file(mode, model_path);
  Json out = Json::object();
  if (file.empty()) return out;
  Json config;
  try {
    config = Json::parse(std::ifstream(file));
  } catch (const std::exception& e) {
    fail("'{}': not valid JSON ({}); fix it, or pass --generation-config vllm to ignore it",
         file.string(), e.what());
  }
  if (!config.is_object()) return out;
  for (const char* field : kSamplingFields) {
    if (!left_out(config, field)) out[field] = config[field];
  }
  Json probe = out;
  probe["prompt"] = "x";
  try {
    parse_completion_request(probe);
  } catch (const ApiError& e) {
    fail("'{}': {}; fix the file, or pass --generation-config vllm to ignore it", file.string(),
         e.what());
  }
  return out;
}

}  // namespace shardlm::server
