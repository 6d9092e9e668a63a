// StatsLogger.
#include "server/stats_logger.h"

#include <spdlog/spdlog.h>

namespace shardlm::server {

void StatsLogger::on_step(const StepReport& r) {
  if (interval_ <= 0) return;
  const double now = monotonic_seconds();
  // A new window after an idle spell, so idle time does not dilute the figures.
  if (now - r.seconds - last_step_ > interval_) {
    window_start_ = now - r.seconds;
    prompt_tokens_ = generation_tokens_ = 0;
    busy_seconds_ = 0;
    comm_start_ = r.stats.comm_seconds;
  }
  busy_seconds_ += r.seconds;
  last_step_ = now;
  prompt_tokens_ += r.step.n_prompt_tokens;
  generation_tokens_ += static_cast<int64_t>(r.step.tokens.size());
  const double elapsed = now - window_start_;
  if (elapsed < interval_) return;
  spdlog::info(
      "Avg prompt throughput: {:.1f} tokens/s, Avg generation throughput: {:.1f} tokens/s, "
      "Running: {} reqs, Waiting: {} reqs, KV cache usage: {:.1f}%, Prefix cache hit rate: {:.1f}%",
      prompt_tokens_ / elapsed, generation_tokens_ / elapsed, r.stats.running, r.stats.waiting,
      100.0 * r.stats.kv_usage, 100.0 * r.stats.prefix.hit_rate());
  if (r.stats.comm_seconds > 0 && busy_seconds_ > 0) {
    spdlog::info("Group: {:.1f}% of engine step time spent communicating",
                 100.0 * (r.stats.comm_seconds - comm_start_) / busy_seconds_);
  }
  window_start_ = now;
  prompt_tokens_ = generation_tokens_ = 0;
  busy_seconds_ = 0;
  comm_start_ = r.stats.comm_seconds;
}

}  // namespace shardlm::server
