// A `shardlm serve` master's membership of a fleet: its etcd registration and, with a NATS server,
// its KV-event and load publisher. The app builds it from --etcd-endpoints / --nats-server and
// wires it into serve's hooks (server::ServerArgs: announce, kv_events, on_step).
#pragma once

#include <memory>
#include <string>

#include "fleet/disaggregation.h"
#include "fleet/kv_event_publisher.h"
#include "fleet/nats_bus.h"
#include "fleet/worker_registration.h"
#include "server/api_server.h"

namespace shardlm::fleet {

struct FleetFlags {
  std::string etcd_endpoints;  // --etcd-endpoints / ETCD_ENDPOINTS
  std::string nats_server;     // --nats-server / NATS_SERVER
  int lease_ttl = 3;           // --lease-ttl seconds
  std::string advertise_host;  // --advertise-host: the address the frontend dials (default: --host,
                               // or this machine's first non-loopback address for 0.0.0.0)
  DisaggregationMode disaggregation = DisaggregationMode::kAggregated;  // --disaggregation-mode
  int kv_transfer_port = 0;  // --kv-transfer-port (decode; 0 = a free port)
  bool enabled() const { return !etcd_endpoints.empty(); }
};

class WorkerAgent {
 public:
  explicit WorkerAgent(FleetFlags flags);
  ~WorkerAgent();

  // Hooks into serve's arguments (only the master's are called).
  void wire(server::ServerArgs& args);
  const std::string& id() const { return id_; }

 private:
  std::shared_ptr<void> announce(const server::ServingEndpoint& e);

  FleetFlags flags_;
  std::string id_;
  std::unique_ptr<NatsBus> bus_;
  std::unique_ptr<KvEventPublisher> publisher_;
  std::weak_ptr<DisaggregatedWorker> disaggregated_;  // alive while serve's HTTP server is
};

}  // namespace shardlm::fleet
