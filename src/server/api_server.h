// `shardlm serve`: loads the model, starts the engine thread and the HTTP server with the
// OpenAI routes, /health, /version and /metrics, logs periodic stats, and shuts down gracefully
// on SIGINT/SIGTERM (stop accepting, let requests in flight finish for a grace period, abort the
// rest with a final chunk, exit 0).
#pragma once

#include <optional>
#include <string>

#include "engine/llm.h"
#include "parallel/group.h"
#include "server/http_server.h"

namespace shardlm::server {

struct ServerArgs {
  EngineArgs engine;
  HttpOptions http;
  int metrics_port = -1;          // -1: /metrics on the main port
  std::string served_model_name;  // empty: the model's name
  double log_interval = 10;       // seconds between stats lines; 0 = off
  double shutdown_grace = 10;     // seconds in-flight requests get to finish on shutdown
  std::optional<parallel::GroupOptions> group;  // several ranks: this one's place in the group
};

// The name clients put in "model" when --served-model-name is not given: a directory's name, a
// .gguf file's name without the extension, a config.json's directory, else the argument itself
// (a dummy preset such as `llama-3.1-8b`).
std::string default_served_name(const std::string& model_path);

// Blocks until SIGINT or SIGTERM; returns the exit status. Throws Error when start-up fails.
int run_api_server(const ServerArgs& args);

}  // namespace shardlm::server
