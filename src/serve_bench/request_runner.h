// One benchmark request: the OpenAI request body for a sample (completions or chat, streaming,
// usage included, ignore_eos), sent with a streaming POST and timed chunk by chunk: time to first
// token, every gap between token chunks, end-to-end latency, and token counts from the usage the
// server reports.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "serve_bench/dataset.h"
#include "serve_bench/http_endpoint.h"
#include "serve_bench/stats.h"

namespace shardlm::serve_bench {

enum class Api { kCompletions, kChat };

struct RequestOptions {
  Endpoint endpoint;
  std::string path = "/v1/completions";  // --endpoint
  std::string model;
  double temperature = 0;
  bool ignore_eos = true;
  nlohmann::json extra_body = nlohmann::json::object();  // merged into every request body

  // /v1/chat/completions (or any path ending in chat/completions) speaks the chat API.
  Api api() const;
};

nlohmann::json request_body(const SampleRequest& sample, const RequestOptions& options);

// Sends the request on client and times it against run_start. Never throws for what the server or
// the network does: failures are returned in the record (ok = false, error).
RequestRecord run_request(httplib::Client& client, const SampleRequest& sample,
                          const RequestOptions& options,
                          std::chrono::steady_clock::time_point run_start);

}  // namespace shardlm::serve_bench
