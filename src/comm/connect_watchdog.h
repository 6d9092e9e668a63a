// A deadline for connecting the collectives. Gloo's pair connect does not give up when a peer's
// listener is unreachable in a way it keeps retrying (GLOO_SOCKET_IFNAME=lo on two hosts, or the
// collective ports dropped by a firewall): ranks sat there silently for 15 minutes. At the
// deadline this ends the process (exit 1) with a message saying what was connecting and why
// that is likely to fail; no rank of a group that cannot connect stays behind.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace shardlm::comm {

class ConnectWatchdog {
 public:
  ConnectWatchdog(std::chrono::milliseconds limit, std::function<std::string()> describe);
  ~ConnectWatchdog();  // in time: disarms
  ConnectWatchdog(const ConnectWatchdog&) = delete;
  ConnectWatchdog& operator=(const ConnectWatchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Why connecting the collectives from this node may hang, from GLOO_SOCKET_IFNAME /
// NCCL_SOCKET_IFNAME and the master's address: a loopback interface for a remote master, an
// interface that does not exist, or (otherwise) ports dropped by a firewall.
std::string likely_connect_cause(const std::string& master_host);

}  // namespace shardlm::comm
