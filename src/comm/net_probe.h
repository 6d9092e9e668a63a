// Network facts the doctor checks on each node: a TCP listener on the address this rank uses for
// collectives (so the other ranks can prove they reach it), a timed connect to a peer's listener,
// the interface an address belongs to, and the size of /dev/shm.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace shardlm::comm {

// Accepts and closes connections on address:any-port until destroyed.
class ProbeListener {
 public:
  explicit ProbeListener(const std::string& address);  // throws Error naming the address
  ~ProbeListener();
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// "ok" when a TCP connection to host:port is made within `timeout`, else why not ("connection
// refused", "no answer within 2000 ms", ...).
std::string probe_tcp(const std::string& host, int port, std::chrono::milliseconds timeout);

// The name of the interface holding `address` ("eth0"), or "" when none does.
std::string interface_of(const std::string& address);
// The first address of interface `name`, or "" when it has none (or does not exist).
std::string address_of_interface(const std::string& name);

// A TCP port on 127.0.0.1 that was free a moment ago (for a one-node group's rendezvous).
int free_loopback_port();

// Bytes of the file system at /dev/shm (0 when it is missing).
uint64_t shm_bytes();

}  // namespace shardlm::comm
