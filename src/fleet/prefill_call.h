// The frontend's first call of a disaggregated request (fleet/disaggregation.h): POST /kv/prefill
// to a prefill worker, naming the decode worker that will serve the request. Synchronous, with a
// connect timeout of 2 s and a read timeout the frontend sets (--prefill-timeout), so that a dead
// or stalled prefill worker is an outcome, never a hang.
#pragma once

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "fleet/worker_info.h"

namespace shardlm::fleet {

struct PrefillOutcome {
  bool ok = false;
  bool refused = false;  // the connection was never made
  int status = 0;        // the worker's HTTP status (0: no answer)
  std::string error;     // what went wrong (the worker's error message for a 4xx)
  int64_t blocks = 0;    // ok: blocks the decode worker stored
  double seconds = 0;
};

PrefillOutcome call_prefill(const WorkerInfo& prefill, const WorkerInfo& decode,
                            const std::string& route, const nlohmann::json& request,
                            const httplib::Headers& headers, std::chrono::milliseconds timeout);

}  // namespace shardlm::fleet
