// Prometheus metrics (prometheus-cpp core, text format, served at GET /metrics): request gauges,
// KV cache usage, prefix-cache hits, token counters, latency histograms and finished-request
// counters by reason. Updated from the engine thread after every step; rendered from any thread.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/async_engine.h"
#include "parallel/rank_stats.h"

namespace shardlm::server {

class ServerMetrics {
 public:
  explicit ServerMetrics(const std::string& model_name);

  void on_step(const StepReport& report);
  std::string render() const;  // Prometheus text exposition format
  // A group's per-rank figures, read at every render (shardlm:rank_*{rank="r"}).
  void set_rank_stats_source(std::function<std::vector<parallel::RankStats>()> source);
  // shardlm:cache_config_info{cache_dtype, block_size, num_blocks} 1 (as vLLM's
  // vllm:cache_config_info): the KV cache's element type (BF16, F8_E4M3, F32) and size.
  void set_cache_config(const std::string& cache_dtype, int block_size, int64_t num_blocks);

 private:
  void on_finished(const FinishedRequest& f);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* preempted_;
  prometheus::Gauge* kv_usage_;
  prometheus::Gauge* prefix_hit_rate_;
  prometheus::Counter* prefix_queries_;
  prometheus::Counter* prefix_hits_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* tpot_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_;
  prometheus::Histogram* step_;
  prometheus::Counter* comm_;
  double last_comm_ = 0;
  prometheus::Family<prometheus::Counter>* success_;
  std::string model_name_;
  std::function<std::vector<parallel::RankStats>()> rank_stats_;
  prometheus::Family<prometheus::Gauge>* rank_steps_ = nullptr;
  prometheus::Family<prometheus::Gauge>* rank_step_seconds_ = nullptr;
  prometheus::Family<prometheus::Gauge>* rank_comm_seconds_ = nullptr;
  prometheus::Family<prometheus::Gauge>* rank_expert_rows_ = nullptr;
  int64_t last_prefix_queries_ = 0;
  int64_t last_prefix_hits_ = 0;
};

}  // namespace shardlm::server
