// `shardlm serve`: loads the model, starts the engine thread and the HTTP server with the
// OpenAI routes, /health, /version and /metrics, logs periodic stats, and shuts down gracefully
// on SIGINT/SIGTERM (stop accepting, let requests in flight finish for a grace period, abort the
// rest with a final chunk, exit 0).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/async_engine.h"
#include "engine/llm.h"
#include "parallel/group.h"
#include "server/http_server.h"
#include "server/serving_context.h"

namespace shardlm::server {

// Where a master serves, for a registry outside the server (the fleet's etcd registration).
struct ServingEndpoint {
  std::string model;  // the served model name
  std::string host;   // --host as given (may be 0.0.0.0)
  int port = 0;
  int block_size = 0;  // tokens per KV block: what the prefix-cache block hashes cover
  int tp = 1, pp = 1, world_size = 1;
};

struct ServerArgs {
  EngineArgs engine;
  HttpOptions http;
  int metrics_port = -1;          // -1: /metrics on the main port
  std::string served_model_name;  // empty: the model's name
  std::vector<std::string> served_model_aliases;  // more names requests may use (vLLM's list)
  std::string grammar_backend = "xgrammar";  // structured output: xgrammar | none
  std::string tool_call_parser;              // vLLM's names (server/openai/tool_parsers.h); "": none
  std::string reasoning_parser;              // deepseek_r1 | qwen3; "": none
  std::string chat_template;  // --chat-template: a file or the template itself; "": the model's
  // Sampling defaults for requests that leave a field out (server/request_defaults.h): "auto" (the
  // model's generation_config.json), "vllm" (none), or a directory with a generation_config.json.
  std::string generation_config = "auto";
  std::optional<uint64_t> seed;  // --seed: unseeded requests' seeds follow from it
  double log_interval = 10;       // seconds between stats lines; 0 = off
  double shutdown_grace = 10;     // seconds in-flight requests get to finish on shutdown
  std::optional<parallel::GroupOptions> group;  // several ranks: this one's place in the group
  // Hooks for the layer above (app/fleet), all optional and master-only: `announce` once the API
  // listens (its handle is dropped when draining starts, so a registration ends before the
  // requests in flight); prefix-cache events and every step's report, on the engine thread.
  std::function<std::shared_ptr<void>(const ServingEndpoint&)> announce;
  KvEventListener kv_events;
  std::function<void(const StepReport&)> on_step;
  // More routes on the API port (the fleet's KV transfer of disaggregated serving), added before
  // it listens; the handle lives until the HTTP server has stopped.
  std::function<std::shared_ptr<void>(HttpServer&, const ServingContext&)> extend;
};

// The name clients put in "model" when --served-model-name is not given: a directory's name, a
// .gguf file's name without the extension, a config.json's directory, else the argument itself
// (a dummy preset such as `llama-3.1-8b`).
std::string default_served_name(const std::string& model_path);

// Blocks until SIGINT or SIGTERM; returns the exit status. Throws Error when start-up fails.
int run_api_server(const ServerArgs& args);

}  // namespace shardlm::server
