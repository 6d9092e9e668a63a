// FrontendMetrics: prometheus-cpp families, rendered by our HTTP server.
#include "fleet/frontend_metrics.h"

#include <prometheus/text_serializer.h>

namespace shardlm::fleet {

using prometheus::BuildCounter;
using prometheus::BuildGauge;

FrontendMetrics::FrontendMetrics(std::string mode)
    : mode_(std::move(mode)), registry_(std::make_shared<prometheus::Registry>()) {
  auto counters = [&](const char* name, const char* help) {
    return &BuildCounter().Name(name).Help(help).Register(*registry_);
  };
  auto gauge = [&](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  requests_ = counters("shardlm:frontend_requests_total", "Requests relayed, per worker.");
  decisions_ = counters("shardlm:frontend_routing_decisions_total",
                        "Routing decisions, per router mode and chosen worker.");
  kv_query_blocks_ = counters("shardlm:frontend_kv_query_blocks_total",
                              "Full prompt blocks of requests routed in kv mode.");
  kv_hit_blocks_ = counters("shardlm:frontend_kv_hit_blocks_total",
                            "Of those, blocks the router estimated cached at its choice.");
  errors_ = counters("shardlm:frontend_errors_total", "Errors, per kind and worker.");
  prefills_ = counters("shardlm:frontend_prefills_total",
                       "Disaggregated prefills, per prefill worker.");
  prefill_blocks_ = counters("shardlm:frontend_prefill_blocks_total",
                             "KV blocks the prefill workers sent to decode workers.");
  prefill_seconds_ = counters("shardlm:frontend_prefill_seconds_total",
                              "Seconds the prefill calls took (prefill and KV transfer).");
  workers_ = gauge("shardlm:frontend_workers", "Workers registered in etcd (last view).");
  etcd_up_ = gauge("shardlm:frontend_etcd_up", "1 when etcd answered the last poll.");
  nats_up_ = gauge("shardlm:frontend_nats_up", "1 when connected to NATS (or none configured).");
  degraded_ = gauge("shardlm:frontend_degraded", "1 when etcd or NATS is unreachable.");
}

void FrontendMetrics::on_decision(const std::string& worker, int request_blocks,
                                  int overlap_blocks) {
  decisions_->Add({{"mode", mode_}, {"worker", worker}}).Increment();
  if (request_blocks > 0) {
    kv_query_blocks_->Add({{"worker", worker}}).Increment(request_blocks);
    kv_hit_blocks_->Add({{"worker", worker}}).Increment(overlap_blocks);
  }
}

void FrontendMetrics::on_relayed(const std::string& worker, const std::string& model) {
  requests_->Add({{"worker", worker}, {"model", model}}).Increment();
}

void FrontendMetrics::on_prefill(const std::string& worker, int64_t blocks, double seconds) {
  prefills_->Add({{"worker", worker}}).Increment();
  prefill_blocks_->Add({{"worker", worker}}).Increment(static_cast<double>(blocks));
  prefill_seconds_->Add({{"worker", worker}}).Increment(seconds);
}

void FrontendMetrics::on_error(const std::string& kind, const std::string& worker) {
  errors_->Add({{"kind", kind}, {"worker", worker}}).Increment();
}

void FrontendMetrics::set_state(size_t workers, bool etcd_ok, bool nats_ok) {
  workers_->Set(static_cast<double>(workers));
  etcd_up_->Set(etcd_ok ? 1 : 0);
  nats_up_->Set(nats_ok ? 1 : 0);
  degraded_->Set(etcd_ok && nats_ok ? 0 : 1);
}

std::string FrontendMetrics::render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace shardlm::fleet
