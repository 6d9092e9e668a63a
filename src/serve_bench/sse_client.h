// A streaming POST: sends a JSON body and hands each server-sent `data:` payload to a callback the
// moment its bytes arrive, until `[DONE]`, the endpoint's timeout, or the callback says stop.
// Transport failures, HTTP errors and truncated streams come back as a message, never as an
// exception, so that one bad request does not end a benchmark.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "serve_bench/http_endpoint.h"

namespace shardlm::serve_bench {

struct StreamOutcome {
  bool ok = false;
  std::string error;  // what went wrong, when !ok
  int status = 0;     // HTTP status, 0 when no response came
};

// on_event gets every payload except the final `[DONE]`; returning false cancels the request
// (reported as an error carrying the reason it stores in *stop_reason, when given).
using OnEvent = std::function<bool(std::string_view payload)>;

StreamOutcome stream_post(httplib::Client& client, const Endpoint& endpoint,
                          const std::string& path, const std::string& json_body,
                          const OnEvent& on_event, std::string* stop_reason = nullptr);

}  // namespace shardlm::serve_bench
