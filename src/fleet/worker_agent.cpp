// WorkerAgent: registration at announce time, events from the engine thread.
#include "fleet/worker_agent.h"

#include <spdlog/spdlog.h>

#include "comm/local_addresses.h"

namespace shardlm::fleet {

namespace {

// What a frontend on another machine can dial for `host`.
std::string reachable_host(const std::string& host, const std::string& advertise) {
  if (!advertise.empty()) return advertise;
  if (host != "0.0.0.0" && host != "::" && !host.empty()) return host;
  for (const std::string& a : comm::interface_addresses()) {
    if (a.find(':') == std::string::npos && a.rfind("127.", 0) != 0) return a;
  }
  return "127.0.0.1";
}

}  // namespace

WorkerAgent::WorkerAgent(FleetFlags flags) : flags_(std::move(flags)), id_(new_worker_id()) {
  if (!flags_.nats_server.empty()) {
    bus_ = std::make_unique<NatsBus>(flags_.nats_server);
    publisher_ = std::make_unique<KvEventPublisher>(*bus_, id_);
  }
}

WorkerAgent::~WorkerAgent() = default;

void WorkerAgent::wire(server::ServerArgs& args) {
  args.announce = [this](const server::ServingEndpoint& e) { return announce(e); };
  if (flags_.disaggregation != DisaggregationMode::kAggregated) {
    args.extend = [this, host = args.http.host](server::HttpServer& http,
                                                 const server::ServingContext& ctx) {
      auto w = start_disaggregated_worker(flags_.disaggregation, http, ctx, host,
                                          flags_.kv_transfer_port);
      disaggregated_ = w;
      return std::shared_ptr<void>(w);
    };
  }
  if (!publisher_) return;
  args.kv_events = [p = publisher_.get()](const KvCacheEvent& e) { p->on_kv_event(e); };
  args.on_step = [p = publisher_.get()](const StepReport& r) { p->on_step(r.stats); };
}

std::shared_ptr<void> WorkerAgent::announce(const server::ServingEndpoint& e) {
  WorkerInfo info;
  info.id = id_;
  info.model = e.model;
  const std::string host = reachable_host(e.host, flags_.advertise_host);
  info.url = host.find(':') != std::string::npos ? fmt::format("http://[{}]:{}", host, e.port)
                                                 : fmt::format("http://{}:{}", host, e.port);
  info.block_size = e.block_size;
  info.tp = e.tp;
  info.pp = e.pp;
  info.world_size = e.world_size;
  info.role = disaggregation_mode_name(flags_.disaggregation);
  if (const auto w = disaggregated_.lock(); w && w->kv_port() > 0) {
    info.kv_transfer = host.find(':') != std::string::npos
                           ? fmt::format("[{}]:{}", host, w->kv_port())
                           : fmt::format("{}:{}", host, w->kv_port());
  }
  EtcdClient etcd(parse_etcd_endpoints(flags_.etcd_endpoints));
  return std::make_shared<WorkerRegistration>(std::move(etcd), std::move(info), flags_.lease_ttl);
}

}  // namespace shardlm::fleet
