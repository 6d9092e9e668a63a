// The frontend's /metrics (Prometheus text): requests relayed per worker, routing decisions per
// mode and worker, KV-hit estimates (prompt blocks routed and the cached blocks the router
// expected at its choice), errors by kind, workers known, and whether etcd and NATS are reachable.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace shardlm::fleet {

class FrontendMetrics {
 public:
  explicit FrontendMetrics(std::string mode);

  void on_decision(const std::string& worker, int request_blocks, int overlap_blocks);
  void on_relayed(const std::string& worker, const std::string& model);
  // A disaggregated request's prefill at `worker`: its blocks sent to the decode worker.
  void on_prefill(const std::string& worker, int64_t blocks, double seconds);
  // kind: refused, failed_before_output, failed_mid_stream, no_worker, bad_request, ...
  void on_error(const std::string& kind, const std::string& worker = "");
  void set_state(size_t workers, bool etcd_ok, bool nats_ok);
  std::string render() const;

 private:
  std::string mode_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* decisions_;
  prometheus::Family<prometheus::Counter>* kv_query_blocks_;
  prometheus::Family<prometheus::Counter>* kv_hit_blocks_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Family<prometheus::Counter>* prefills_;
  prometheus::Family<prometheus::Counter>* prefill_blocks_;
  prometheus::Family<prometheus::Counter>* prefill_seconds_;
  prometheus::Gauge* workers_;
  prometheus::Gauge* etcd_up_;
  prometheus::Gauge* nats_up_;
  prometheus::Gauge* degraded_;
};

}  // namespace shardlm::fleet
