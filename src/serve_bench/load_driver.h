// Sends a run's requests at their arrival times with at most max_concurrency in flight. Each
// request runs on a worker thread with its own HTTP connection; a request whose arrival time has
// come waits for a free worker, as vLLM's semaphore makes it wait.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <vector>

#include "serve_bench/stats.h"

namespace shardlm::serve_bench {

struct LoadPlan {
  std::vector<double> arrivals;  // seconds from the start of the run, one per request
  int max_concurrency = 0;       // 0 = no limit (one worker per request, at most kMaxWorkers)
  static constexpr int kMaxWorkers = 1024;
};

struct LoadProgress {
  size_t done = 0;
  size_t failed = 0;
  size_t total = 0;
};

// Runs request `index` on the calling worker thread, timed against run_start.
using RequestFn =
    std::function<RequestRecord(size_t index, std::chrono::steady_clock::time_point run_start)>;

struct LoadResult {
  std::vector<RequestRecord> records;  // in request order
  double duration = 0;                 // start of the run -> last completion, seconds
};

// make_request is called once per worker thread and returns that worker's RequestFn (so each
// worker can own a connection). on_progress, when set, is called after each completion (from the
// worker that completed it, one call at a time).
LoadResult drive_load(const LoadPlan& plan, const std::function<RequestFn()>& make_request,
                      const std::function<void(const LoadProgress&)>& on_progress = nullptr);

}  // namespace shardlm::serve_bench
