// The fleet's doctor: etcd, NATS, the registered workers.
#include "fleet/fleet_doctor.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <thread>

#include "fleet/etcd_client.h"
#include "fleet/kv_transfer_client.h"
#include "fleet/nats_bus.h"
#include "fleet/worker_info.h"

namespace shardlm::fleet {

namespace {

bool check_nats(const std::string& url) {
  NatsBus bus(url);
  for (int i = 0; i < 20 && !bus.connected(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (bus.connected()) {
    fmt::print("NATS {}: connected\n", bus.url());
    return true;
  }
  fmt::print("NATS {}: UNREACHABLE (is nats-server running? `nats-server -p 4222`)\n", bus.url());
  return false;
}

std::string probe_health(const std::string& url) {
  httplib::Client cli(url);
  cli.set_connection_timeout(std::chrono::seconds(2));
  cli.set_read_timeout(std::chrono::seconds(2));
  auto res = cli.Get("/health");
  if (!res) return "unreachable (" + httplib::to_string(res.error()) + ")";
  return res->status == 200 ? "healthy" : fmt::format("unhealthy (HTTP {})", res->status);
}

// The raw bandwidth of this host's link to a decode worker's KV transfer port: the best of three
// 64 MiB probes (what a KV transfer over that link can approach; its own rate is in the worker's
// /kv/stats).
std::string probe_kv_bandwidth(const std::string& target) {
  constexpr uint64_t kBytes = uint64_t(64) << 20;
  try {
    double best = 1e30;
    for (int i = 0; i < 3; ++i) best = std::min(best, probe_kv_link(target, kBytes));
    return fmt::format("KV transfer link {}: {:.2f} GB/s raw (best of 3 probes of 64 MiB)", target,
                       static_cast<double>(kBytes) / best / 1e9);
  } catch (const std::exception& e) {
    return fmt::format("KV transfer link {}: UNREACHABLE: {}", target, e.what());
  }
}

void list_workers(EtcdClient& etcd) {
  const auto entries = etcd.get_prefix(kWorkersPrefix);
  fmt::print("workers registered: {}\n", entries.size());
  for (const auto& [key, value] : entries) {
    std::string why;
    const auto w = parse_worker_info(value, why);
    if (!w) {
      fmt::print("  {}: IGNORED by frontends: {}\n", key, why);
      continue;
    }
    fmt::print("  {}  model '{}'  {}  tp {} x pp {}  block {}  {}: {}\n", w->id, w->model, w->url,
               w->tp, w->pp, w->block_size, w->role, probe_health(w->url));
    if (!w->kv_transfer.empty()) fmt::print("    {}\n", probe_kv_bandwidth(w->kv_transfer));
  }
}

}  // namespace

int run_fleet_doctor(const std::string& etcd_endpoints, const std::string& nats_server) {
  bool ok = true;
  if (!nats_server.empty()) ok = check_nats(nats_server) && ok;
  if (etcd_endpoints.empty()) return ok ? 0 : 1;
  EtcdClient etcd(parse_etcd_endpoints(etcd_endpoints));
  try {
    fmt::print("etcd {}: version {}\n", etcd.endpoints().front(), etcd.version());
    list_workers(etcd);
  } catch (const std::exception& e) {
    fmt::print("etcd {}: UNREACHABLE: {} (is etcd running? `etcd --listen-client-urls "
               "http://0.0.0.0:2379 --advertise-client-urls http://HEAD:2379`)\n",
               etcd_endpoints, e.what());
    ok = false;
  }
  return ok ? 0 : 1;
}

}  // namespace shardlm::fleet
