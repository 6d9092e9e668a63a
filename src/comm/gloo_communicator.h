// Communicator over Gloo's TCP transport. The ranks find each other through the rendezvous store;
// each binds the local address it uses to reach the master (so the interface others can reach is
// chosen without GLOO_SOCKET_IFNAME, which still overrides it).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

#include "comm/communicator.h"
#include "comm/store.h"

namespace gloo {
class Context;
}

namespace shardlm::comm {

class GlooCommunicator : public Communicator {
 public:
  // Connects rank `rank` of `size`; throws Error naming the missing peers when the mesh is not
  // complete within `timeout`. `prefix` namespaces the store keys (several groups may share it).
  GlooCommunicator(StoreClient& store, const std::string& prefix, int rank, int size,
                   std::chrono::milliseconds timeout);
  ~GlooCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(float* data, size_t n) override;
  void broadcast(std::vector<char>& bytes, int root) override;
  void gather(const float* data, size_t n, float* out, int root) override;
  void all_gather(const float* data, size_t n, float* out) override;
  void barrier() override;
  void send(const float* data, size_t n, int dst) override;
  void recv(float* data, size_t n, int src) override;
  // An unbound-buffer send that Gloo's I/O thread carries on while the caller computes.
  std::unique_ptr<PendingSend> isend(const float* data, size_t n, int dst) override;
  // Seconds spent inside communication calls so far (this rank's view).
  double busy_seconds() const override { return busy_seconds_; }
  // Timeout of later collectives (the start-up timeout covers connecting).
  void set_timeout(std::chrono::milliseconds timeout);

 private:
  int rank_;
  int size_;
  uint32_t tag_ = 0;
  std::atomic<double> busy_seconds_{0};
  std::shared_ptr<gloo::Context> context_;
};

// The local address this machine uses to reach host:port (a connected UDP socket's name).
std::string local_address_towards(const std::string& host, int port);

}  // namespace shardlm::comm
