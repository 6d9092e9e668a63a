// The periodic log line, like vLLM's: prompt and generation throughput since the last line,
// running and waiting requests, KV cache usage and the prefix-cache hit rate. Fed from the engine
// thread after each step; logs at most once per interval, and only while there is work.
#pragma once

#include "engine/async_engine.h"

namespace shardlm::server {

class StatsLogger {
 public:
  explicit StatsLogger(double interval_seconds) : interval_(interval_seconds) {}

  void on_step(const StepReport& report);

 private:
  double interval_;
  double window_start_ = 0;
  double last_step_ = 0;
  int64_t prompt_tokens_ = 0;
  int64_t generation_tokens_ = 0;
  double busy_seconds_ = 0;  // engine steps in this window
  double comm_start_ = 0;    // stats.comm_seconds at the window's start
};

}  // namespace shardlm::server
