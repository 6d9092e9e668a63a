// Relaying one request's answer from an upstream server (a fleet worker, a data-parallel
// replica) to the client: wait for the upstream's first output (so that a failure before it can
// still go to another upstream), then commit: a stream (SSE) is passed on chunk by chunk and ends
// with an error event and [DONE] when the upstream cuts it; any other answer is passed on whole.
// Used by `shardlm frontend` (frontend.h) and the data-parallel controller (dp_controller.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "fleet/upstream_call.h"
#include "server/http_request.h"

namespace shardlm::fleet {

// The upstream's answer up to its first body bytes (or its end, or its failure).
struct FirstOutput {
  bool ok = false;
  bool refused = false;
  int status = 0;
  std::string content_type;
  std::string data;    // the first bytes of the body
  bool ended = false;  // the whole answer has arrived
  std::string error;   // "client left" when the client went away while waiting
};

// Waits for the first output; a 503 head (draining or unhealthy) counts as a failure, so that the
// caller tries another upstream.
FirstOutput first_output(UpstreamCall& call, const server::HttpRequest& req);

// Called when the upstream fails after the answer was committed: kind is "failed_mid_stream" or
// "failed_mid_response".
using RelayFailure = std::function<void(const char* kind, const std::string& error)>;

// Commits the answer to `res`. `hold` (the caller's in-flight token) is released when the
// upstream's answer has ended, before the client sees the end. Throws server::ApiError (502) when a
// non-streamed answer is cut.
void deliver_answer(FirstOutput& f, std::shared_ptr<UpstreamCall> call, std::shared_ptr<void> hold,
                    RelayFailure on_failure, httplib::Response& res);

}  // namespace shardlm::fleet
