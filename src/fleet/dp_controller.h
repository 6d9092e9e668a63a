// `shardlm serve --dp N`: the data-parallel controller (parallel/data_parallel.h). It starts the N
// replicas (fleet/dp_replicas.h), serves the one OpenAI API once they are up, sends each request
// to a replica chosen by the balancer (parallel/dp_balancer.h), relays the answer (fleet/relay.h),
// tries the next replica when the first fails before any output, and reports the replicas in
// /health (each one's state, ranks, pid, reason) and /metrics (per-replica running, waiting, KV
// usage, requests served, restarts). SIGINT/SIGTERM go on to every replica, which drain.
#pragma once

#include <string>
#include <vector>

#include "parallel/data_parallel.h"
#include "server/http_server.h"

namespace shardlm::fleet {

struct DataParallelArgs {
  parallel::DataParallelLayout layout;
  server::HttpOptions http;      // the public API
  std::vector<std::string> own;  // this process's command line (replicas run it, rewritten)
  int threads = 0;               // --threads per replica rank (0: the replica's default)
  double start_timeout = 600;    // seconds the replicas get to start
  double shutdown_grace = 10;    // the replicas' drain, before they are killed (+15 s)
};

// Blocks until SIGINT/SIGTERM; returns the exit status (the replicas' verdict). Throws Error when
// no replica starts.
int run_data_parallel(const DataParallelArgs& args);

}  // namespace shardlm::fleet
