// ConnectWatchdog: a thread waiting on a condition variable until disarmed or the deadline.
#include "comm/connect_watchdog.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "comm/net_probe.h"

namespace shardlm::comm {

ConnectWatchdog::ConnectWatchdog(std::chrono::milliseconds limit,
                                 std::function<std::string()> describe) {
  thread_ = std::thread([this, limit, describe = std::move(describe)] {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
    spdlog::error("{}", describe());
    spdlog::default_logger()->flush();
    std::_Exit(1);  // the connecting thread is stuck inside Gloo: nothing to unwind
  });
}

ConnectWatchdog::~ConnectWatchdog() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

namespace {

bool loopback(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "::1";
}

}  // namespace

std::string likely_connect_cause(const std::string& master_host) {
  for (const char* var : {"GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"}) {
    const char* value = std::getenv(var);
    if (value == nullptr || *value == '\0' || *value == '^' || *value == '=') continue;
    const std::string address = address_of_interface(value);
    if (address.empty()) {
      return fmt::format("{}={} names no interface with an IPv4 address on this node", var, value);
    }
    if (loopback(address) && !loopback(master_host)) {
      return fmt::format(
          "{}={} is the loopback interface ({}), which the other hosts cannot "
          "reach; name the interface that carries {}",
          var, value, address, master_host);
    }
  }
  return "a firewall drops the collective ports between the nodes (Gloo and NCCL listen on "
         "ephemeral ports: allow TCP between the nodes), or the interface the ranks chose is not "
         "reachable from the others (set GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME); "
         "`shardlm doctor` tests every path";
}

}  // namespace shardlm::comm
