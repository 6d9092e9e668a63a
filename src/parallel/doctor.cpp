// run_doctor: hellos, reachability probes, verdicts, timed collectives, the report.
#include "parallel/doctor.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "comm/gloo_communicator.h"
#include "comm/net_probe.h"
#include "comm/shm_communicator.h"
#include "core/build_info.h"
#include "core/error.h"
#include "model/weights_fingerprint.h"
#include "parallel/comm_bench.h"

namespace shardlm::parallel {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr uint64_t kShmWarnBytes = uint64_t{1} << 30;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string this_host() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// Problems with GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME on this node ("" when none).
std::string ifname_problem() {
  for (const char* var : {"GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"}) {
    const std::string v = env_or_empty(var);
    if (!v.empty() && v[0] != '^' && v[0] != '=' && comm::address_of_interface(v).empty()) {
      return fmt::format("{}={} names no interface with an IPv4 address on this node", var, v);
    }
  }
  return "";
}

// The address this rank's collectives bind: GLOO_SOCKET_IFNAME's, else the route to the master.
std::string collective_address(const GroupOptions& g) {
  const std::string iface = env_or_empty("GLOO_SOCKET_IFNAME");
  if (!iface.empty()) {
    const std::string a = comm::address_of_interface(iface);
    if (!a.empty()) return a;
  }
  return comm::local_address_towards(g.master_host, g.master_port);
}

json hello(const DoctorOptions& o, const std::string& address, int probe_port) {
  const GroupOptions& g = o.group;
  return {{"rank", g.rank},
          {"node", g.rank / (g.world_size / g.nnodes)},
          {"host", this_host()},
          {"address", address},
          {"iface", comm::interface_of(address)},
          {"probe_port", probe_port},
          {"shm", comm::shm_bytes()},
          {"ifname_problem", ifname_problem()},
          {"version", build_id()},
          {"fingerprint", o.fingerprint},
          {"layout", fmt::format("tp {} x pp {} = {}", g.tp, g.pp, g.world_size)}};
}

// Every rank's hello that arrives before the deadline (null where one did not).
std::vector<json> collect(comm::StoreClient& store, const std::string& prefix, int world,
                          Clock::time_point deadline) {
  std::vector<json> out(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::string text;
    if (store.try_get(prefix + std::to_string(r), std::max(left, std::chrono::milliseconds(1)),
                      text))
      out[static_cast<size_t>(r)] = json::parse(text);
  }
  return out;
}

// This rank's TCP probe of every other rank that arrived: {"<rank>": "ok" | why not}.
json probe_all(const std::vector<json>& hellos, int me, std::chrono::milliseconds timeout) {
  json out = json::object();
  for (const json& h : hellos) {
    if (h.is_null() || h["rank"] == me) continue;
    out[std::to_string(h["rank"].get<int>())] =
        comm::probe_tcp(h["address"], h["probe_port"].get<int>(), timeout);
  }
  return out;
}

// Why rank r is not ready ("" when it is), as the master sees it.
std::string rank_problem(const std::vector<json>& hellos, const std::vector<json>& probes, int r,
                         double timeout_s) {
  const json& h = hellos[static_cast<size_t>(r)];
  const json& m = hellos[0];
  if (h.is_null()) return fmt::format("did not arrive within {:.0f} s", timeout_s);
  if (h["version"] != m["version"])
    return fmt::format("shardlm {} but the master runs {}", h["version"].get<std::string>(),
                       m["version"].get<std::string>());
  if (h["fingerprint"] != m["fingerprint"])
    return "model fingerprint differs from the master's: " +
           fingerprint_difference(h["fingerprint"].get<std::string>(),
                                  m["fingerprint"].get<std::string>());
  if (h["layout"] != m["layout"])
    return fmt::format("layout {} but the master has {}", h["layout"].get<std::string>(),
                       m["layout"].get<std::string>());
  if (const std::string p = h["ifname_problem"]; !p.empty()) return p;
  for (size_t a = 0; a < probes.size(); ++a) {
    if (a == static_cast<size_t>(r) || hellos[a].is_null()) continue;
    if (probes[a].is_null()) return fmt::format("rank {} did not report its probes", a);
    const std::string res = probes[a].value(std::to_string(r), std::string("not probed"));
    if (res == "ok") continue;
    // Silence is a firewall's DROP; a refusal means the address is not the one the others
    // reach (the interface trap).
    const std::string advice =
        res.find("no answer") != std::string::npos
            ? "the packets are dropped, as a firewall's DROP rule does; allow TCP between the "
              "nodes on every port (Gloo and NCCL listen on ephemeral ports)"
            : "this is the address its route to the master picked: if the nodes share another "
              "network, set GLOO_SOCKET_IFNAME and NCCL_SOCKET_IFNAME to that interface on every "
              "node";
    return fmt::format("not reachable at {}:{} ({}) from rank {} on {}: {}; {}",
                       h["address"].get<std::string>(), h["probe_port"].get<int>(),
                       h["iface"].get<std::string>(), a, hellos[a]["host"].get<std::string>(), res,
                       advice);
  }
  return "";
}

std::string size_text(uint64_t bytes) {
  return bytes >= (uint64_t{1} << 30) ? fmt::format("{:.1f} GiB", bytes / double(1 << 30))
                                      : fmt::format("{:.0f} MiB", bytes / double(1 << 20));
}

std::string node_table(const std::vector<json>& hellos, const std::vector<std::string>& problems) {
  std::string out =
      fmt::format("{:<5} {:<5} {:<16} {:<16} {:<8} {:<10} {:<33} {:<33} {}\n", "rank", "node",
                  "host", "address", "iface", "/dev/shm", "version", "model", "verdict");
  for (size_t r = 0; r < hellos.size(); ++r) {
    const json& h = hellos[r];
    const std::string verdict = problems[r].empty() ? "ok" : "NOT READY: " + problems[r];
    if (h.is_null()) {
      out += fmt::format("{:<5} {:<5} {:<16} {:<16} {:<8} {:<10} {:<33} {:<33} {}\n", r, "?", "?",
                         "?", "?", "?", "?", "?", verdict);
      continue;
    }
    const std::string fp = h["fingerprint"].get<std::string>();
    const uint64_t shm = h["shm"];
    out += fmt::format("{:<5} {:<5} {:<16} {:<16} {:<8} {:<10} {:<33} {:<33} {}{}\n", r,
                       h["node"].get<int>(), h["host"].get<std::string>(),
                       h["address"].get<std::string>(), h["iface"].get<std::string>(),
                       size_text(shm), h["version"].get<std::string>(), fp.empty() ? "-" : fp,
                       verdict, shm < kShmWarnBytes ? " (warning: small /dev/shm)" : "");
  }
  return out;
}

// The all-reduce Megatron TP groups use: through shared memory when every rank maps one segment
// (one host; comm/shm_communicator.h), else Gloo; timed when shared memory.
std::string shm_figures(comm::StoreClient& store, const DoctorOptions& o) {
  const GroupOptions& g = o.group;
  std::string how;
  auto comm =
      comm::with_shm_all_reduce(std::make_unique<comm::GlooCommunicator>(
                                    store, "doctor-shm/", g.rank, g.world_size, g.startup_timeout),
                                g.startup_timeout, &how);
  if (how != "shared memory") return fmt::format("TP all-reduce: {}\n", how);
  const CollectiveTiming small = time_all_reduce(*comm, 4096, 20);
  const CollectiveTiming big = time_all_reduce(*comm, o.bandwidth_bytes, 5);
  comm->barrier();
  return fmt::format(
      "TP all-reduce: shared memory (every rank on this host): 4 KiB in {:.3f} ms; {} in {:.2f} "
      "ms\n",
      small.seconds * 1e3, size_text(big.bytes), big.seconds * 1e3);
}

// The timed collectives, run by every rank in the same order; the master's figures as text.
std::string measure(comm::StoreClient& store, const DoctorOptions& o) {
  const GroupOptions& g = o.group;
  comm::GlooCommunicator comm(store, "doctor-gloo/", g.rank, g.world_size, g.startup_timeout);
  const CollectiveTiming small = time_all_reduce(comm, 4096, 20);
  const CollectiveTiming big = time_all_reduce(comm, o.bandwidth_bytes, 5);
  const CollectiveTiming gather = time_all_gather(comm, 4096, 20);
  std::string out = fmt::format(
      "all-reduce over {} ranks (Gloo, TCP): 4 KiB in {:.3f} ms; {} in {:.2f} ms = {:.2f} GB/s "
      "algbw, {:.2f} GB/s busbw\n",
      g.world_size, small.seconds * 1e3, size_text(big.bytes), big.seconds * 1e3, big.algbw() / 1e9,
      big.busbw(g.world_size) / 1e9);
  out += fmt::format("all-gather of 4 KiB per rank (tensor-parallel activations): {:.3f} ms\n",
                     gather.seconds * 1e3);
  out += shm_figures(store, o);
  for (int r = 1; r < g.world_size; ++r) {
    const CollectiveTiming lat = time_ping_pong(comm, 0, r, 8, 20);
    const CollectiveTiming bw = time_ping_pong(comm, 0, r, o.bandwidth_bytes, 3);
    out += fmt::format("link rank 0 <-> rank {}: latency {:.3f} ms, bandwidth {:.2f} GB/s\n", r,
                       lat.seconds * 1e3, bw.algbw() / 1e9);
  }
  comm.barrier();
  return out;
}

}  // namespace

int run_doctor(const DoctorOptions& o) {
  const GroupOptions& g = o.group;
  const bool master = g.rank == 0;
  std::unique_ptr<comm::StoreServer> server;
  if (master) server = std::make_unique<comm::StoreServer>(g.master_host, g.master_port, g.token);
  comm::StoreClient store(g.master_host, server ? server->port() : g.master_port, g.token,
                          g.startup_timeout);
  const auto deadline = Clock::now() + g.startup_timeout;
  const std::string address = collective_address(g);
  comm::ProbeListener listener(address);
  store.set("doctor/hello/" + std::to_string(g.rank), hello(o, address, listener.port()).dump());
  const auto hellos = collect(store, "doctor/hello/", g.world_size, deadline);
  store.set("doctor/probes/" + std::to_string(g.rank),
            probe_all(hellos, g.rank, o.probe_timeout).dump());
  std::string report;
  if (master) {
    const auto probes = collect(store, "doctor/probes/", g.world_size,
                                std::max(deadline, Clock::now() + o.probe_timeout * 2));
    std::vector<std::string> problems;
    int ready = 0;
    for (int r = 0; r < g.world_size; ++r) {
      problems.push_back(rank_problem(hellos, probes, r, g.startup_timeout.count() / 1000.0));
      ready += problems.back().empty();
    }
    report = fmt::format("shardlm doctor: {} ranks on {} nodes, rendezvous {}\n", g.world_size,
                         g.nnodes, store.address()) +
             node_table(hellos, problems);
    const bool go = ready == g.world_size;
    store.set("doctor/go", go ? "yes" : "no");
    if (go) report += measure(store, o);
    report += go ? fmt::format("verdict: ok, all {} ranks ready\n", g.world_size)
                 : fmt::format("verdict: NOT READY, {} of {} ranks ready\n", ready, g.world_size);
    store.set("doctor/report", report);
  } else {
    if (store.get("doctor/go") == "yes") measure(store, o);
    report = store.get("doctor/report");
  }
  if (g.local_rank == 0) {  // one copy of the report per node
    fmt::print("{}", report);
    std::fflush(stdout);
  }
  if (master) std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let ranks read it
  return report.find("verdict: ok") != std::string::npos ? 0 : 1;
}

}  // namespace shardlm::parallel
