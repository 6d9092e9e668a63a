// Defaults the server gives requests that leave a field out, as vLLM does:
// - sampling: temperature, top_p, top_k, min_p and repetition_penalty from the model's
//   generation_config.json (vLLM's --generation-config auto, its default; SGLang's
//   --sampling-defaults model), or from another directory's; "vllm" gives none (the API's own
//   defaults). A GGUF file has no generation_config.json.
// - a seed (--seed): the k-th request without one (counted from start-up) gets a seed mixed from
//   --seed and k, so a server restarted with the same --seed answers the same sequence of
//   requests alike.
// They are written into the request body before it is parsed, so the parser checks them like any
// field; the file's values are checked once, at start-up.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "server/openai/json_fields.h"

namespace shardlm::server {

class RequestDefaults {
 public:
  RequestDefaults() = default;
  RequestDefaults(Json sampling, std::optional<uint64_t> seed);

  // Adds each default the body leaves out (absent or null). Thread-safe.
  void apply(Json& body) const;
  const Json& sampling() const { return sampling_; }
  bool seeded() const { return seed_.has_value(); }

 private:
  Json sampling_ = Json::object();  // field -> value
  std::optional<uint64_t> seed_;
  mutable std::atomic<uint64_t> issued_{0};
};

// The sampling fields of the generation_config.json that --generation-config `mode` names (auto:
// the one beside the model at model_path; vllm: none; else a directory), checked against the
// API's ranges. Throws Error naming the file and field for unreadable JSON or a value out of
// range, and for a directory without the file.
Json generation_config_defaults(const std::string& mode, const std::string& model_path);

}  // namespace shardlm::server
