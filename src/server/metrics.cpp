// ServerMetrics: metric families named like vLLM's (shardlm: prefix).
#include "server/metrics.h"

#include <prometheus/text_serializer.h>

namespace shardlm::server {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const Histogram::BucketBoundaries kLatencyBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06,  0.08,
                                                     0.1,   0.25,  0.5,  0.75, 1.0,  2.5,   5.0,
                                                     7.5,   10.0,  20.0, 40.0, 80.0, 160.0, 640.0};

}  // namespace

ServerMetrics::ServerMetrics(const std::string& model_name)
    : registry_(std::make_shared<prometheus::Registry>()), model_name_(model_name) {
  const prometheus::Labels labels{{"model_name", model_name}};
  auto gauge = [&](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(*registry_).Add(labels);
  };
  auto counter = [&](const char* name, const char* help) {
    return &BuildCounter().Name(name).Help(help).Register(*registry_).Add(labels);
  };
  auto histogram = [&](const char* name, const char* help) {
    return &BuildHistogram()
                .Name(name)
                .Help(help)
                .Register(*registry_)
                .Add(labels, kLatencyBuckets);
  };
  running_ = gauge("shardlm:num_requests_running", "Requests in the running batch.");
  waiting_ = gauge("shardlm:num_requests_waiting", "Requests waiting to be scheduled.");
  preempted_ = gauge("shardlm:num_requests_preempted", "Waiting requests that were preempted.");
  kv_usage_ = gauge("shardlm:kv_cache_usage_perc", "Fraction of KV cache blocks in use (0-1).");
  prefix_hit_rate_ =
      gauge("shardlm:prefix_cache_hit_rate", "Prefix-cache hits / queried tokens since start.");
  prefix_queries_ =
      counter("shardlm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.");
  prefix_hits_ =
      counter("shardlm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.");
  preemptions_ = counter("shardlm:num_preemptions_total", "Requests preempted (KV cache full).");
  prompt_tokens_ = counter("shardlm:prompt_tokens_total", "Prompt tokens computed.");
  generation_tokens_ = counter("shardlm:generation_tokens_total", "Tokens generated.");
  ttft_ = histogram("shardlm:time_to_first_token_seconds", "Time to first token.");
  tpot_ = histogram("shardlm:time_per_output_token_seconds",
                    "Mean time per output token after the first.");
  e2e_ = histogram("shardlm:e2e_request_latency_seconds", "End-to-end request latency.");
  queue_ =
      histogram("shardlm:request_queue_time_seconds", "Time from arrival to first scheduling.");
  step_ = histogram("shardlm:engine_step_seconds", "Time of one engine step (all ranks).");
  comm_ = counter("shardlm:comm_seconds_total",
                  "Time the master spent communicating with other ranks (0 on one rank).");
  success_ = &BuildCounter()
                  .Name("shardlm:request_success_total")
                  .Help("Finished requests by finish reason.")
                  .Register(*registry_);
}

void ServerMetrics::set_cache_config(const std::string& cache_dtype, int block_size,
                                     int64_t num_blocks) {
  BuildGauge()
      .Name("shardlm:cache_config_info")
      .Help("The KV cache's element type and size (value 1).")
      .Register(*registry_)
      .Add({{"model_name", model_name_},
            {"cache_dtype", cache_dtype},
            {"block_size", std::to_string(block_size)},
            {"num_blocks", std::to_string(num_blocks)}})
      .Set(1);
}

void ServerMetrics::on_step(const StepReport& r) {
  running_->Set(r.stats.running);
  waiting_->Set(r.stats.waiting);
  preempted_->Set(r.stats.preempted_waiting);
  kv_usage_->Set(r.stats.kv_usage);
  prefix_hit_rate_->Set(r.stats.prefix.hit_rate());
  prefix_queries_->Increment(
      static_cast<double>(r.stats.prefix.queried_tokens - last_prefix_queries_));
  prefix_hits_->Increment(static_cast<double>(r.stats.prefix.hit_tokens - last_prefix_hits_));
  last_prefix_queries_ = r.stats.prefix.queried_tokens;
  last_prefix_hits_ = r.stats.prefix.hit_tokens;
  preemptions_->Increment(static_cast<double>(r.step.preempted.size()));
  prompt_tokens_->Increment(r.step.n_prompt_tokens);
  generation_tokens_->Increment(static_cast<double>(r.step.tokens.size()));
  for (const FinishedRequest& f : r.step.finished) on_finished(f);
  if (!r.step.scheduled.empty()) step_->Observe(r.seconds);
  comm_->Increment(std::max(0.0, r.stats.comm_seconds - last_comm_));
  last_comm_ = r.stats.comm_seconds;
}

void ServerMetrics::on_finished(const FinishedRequest& f) {
  const RequestTimes& t = f.times;
  success_->Add({{"model_name", model_name_}, {"finished_reason", to_string(f.reason)}})
      .Increment();
  if (t.first_scheduled > 0) queue_->Observe(t.first_scheduled - t.arrival);
  if (t.first_token > 0) {
    ttft_->Observe(t.first_token - t.arrival);
    e2e_->Observe(t.finished - t.arrival);
    if (f.output.size() > 1) {
      tpot_->Observe((t.last_token - t.first_token) / static_cast<double>(f.output.size() - 1));
    }
  }
}

void ServerMetrics::set_rank_stats_source(
    std::function<std::vector<parallel::RankStats>()> source) {
  rank_stats_ = std::move(source);
  auto family = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
  };
  rank_steps_ = family("shardlm:rank_steps", "forward steps each rank of the group has run");
  rank_step_seconds_ =
      family("shardlm:rank_step_seconds", "seconds each rank has spent in forward steps");
  rank_comm_seconds_ =
      family("shardlm:rank_comm_seconds",
             "seconds of those steps each rank spent communicating (waits included)");
  rank_expert_rows_ = family("shardlm:rank_expert_rows",
                             "(token, expert) rows each rank's experts have run: the expert load "
                             "per rank (its share under --enable-expert-parallel)");
}

std::string ServerMetrics::render() const {
  if (rank_stats_) {
    for (const parallel::RankStats& s : rank_stats_()) {
      const std::map<std::string, std::string> labels{{"model_name", model_name_},
                                                      {"rank", std::to_string(s.rank)}};
      rank_steps_->Add(labels).Set(static_cast<double>(s.steps));
      rank_step_seconds_->Add(labels).Set(s.step_seconds);
      rank_comm_seconds_->Add(labels).Set(s.comm_seconds);
      rank_expert_rows_->Add(labels).Set(static_cast<double>(s.expert_rows));
    }
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace shardlm::server
