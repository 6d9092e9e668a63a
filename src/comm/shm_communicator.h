// A host communicator whose all-reduce goes through shared memory (shm_all_reduce.h) when every
// rank of the group can map the same segment (one host), and whose other collectives go to the
// communicator it wraps (Gloo). A decorator, as host staging is: the forward sees one
// Communicator.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm/shm_all_reduce.h"

namespace shardlm::comm {

class ShmCommunicator : public Communicator {
 public:
  ShmCommunicator(std::unique_ptr<Communicator> inner, std::unique_ptr<ShmAllReduce> shm);

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  void all_reduce_sum(float* data, size_t n) override;
  void broadcast(std::vector<char>& bytes, int root) override { inner_->broadcast(bytes, root); }
  void gather(const float* data, size_t n, float* out, int root) override {
    inner_->gather(data, n, out, root);
  }
  void all_gather(const float* data, size_t n, float* out) override {
    inner_->all_gather(data, n, out);
  }
  void barrier() override { inner_->barrier(); }
  void send(const float* data, size_t n, int dst) override { inner_->send(data, n, dst); }
  void recv(float* data, size_t n, int src) override { inner_->recv(data, n, src); }
  std::unique_ptr<PendingSend> isend(const float* data, size_t n, int dst) override {
    return inner_->isend(data, n, dst);
  }
  double busy_seconds() const override { return inner_->busy_seconds() + busy_seconds_; }

 private:
  std::unique_ptr<Communicator> inner_;
  std::unique_ptr<ShmAllReduce> shm_;
  double busy_seconds_ = 0;  // read by the stats thread: a torn double is only a stale figure
};

// Every rank of `inner` calls this together (a collective over `inner`). Rank 0 makes a segment
// and broadcasts its name; when every rank maps it (same host) the result is a ShmCommunicator
// over `inner`, otherwise `inner` itself. Off when rank 0 has SHARDLM_SHM_ALLREDUCE=0 (the group
// follows rank 0). `how` receives "shared memory" or "Gloo (<why>)" for the log.
std::unique_ptr<Communicator> with_shm_all_reduce(std::unique_ptr<Communicator> inner,
                                                  std::chrono::milliseconds timeout,
                                                  std::string* how = nullptr);

}  // namespace shardlm::comm
