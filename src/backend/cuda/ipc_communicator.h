// A TP group's device communicator whose small all-reduces go through the IPC all-reduce
// (ipc_all_reduce.h: GPUs of one host reading each other's memory, one kernel, no NCCL call) and
// everything else to the NCCL communicator it wraps: a decorator, so the forward sees one
// Communicator. Chosen at connect time by with_ipc_all_reduce; NCCL alone wherever it cannot be.
#pragma once

#include <memory>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/ipc_all_reduce.h"
#include "comm/communicator.h"
#include "comm/device_comm_options.h"

namespace shardlm::cuda {

class IpcCommunicator : public comm::Communicator {
 public:
  IpcCommunicator(std::unique_ptr<comm::Communicator> inner, std::unique_ptr<IpcAllReduce> ipc,
                  CudaBackend& backend, std::string name);

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  bool device_memory() const override { return true; }
  // Up to the IPC buffer's capacity through it; larger messages through NCCL.
  void all_reduce_sum(float* data, size_t n) override;
  void broadcast(std::vector<char>& bytes, int root) override { inner_->broadcast(bytes, root); }
  void gather(const float* data, size_t n, float* out, int root) override {
    inner_->gather(data, n, out, root);
  }
  void all_gather(const float* data, size_t n, float* out) override {
    inner_->all_gather(data, n, out);
  }
  void all_gather_cols(const float* local, int64_t rows, int64_t cols, float* full) override {
    inner_->all_gather_cols(local, rows, cols, full);
  }
  void barrier() override { inner_->barrier(); }
  void send(const float* data, size_t n, int dst) override { inner_->send(data, n, dst); }
  void recv(float* data, size_t n, int src) override { inner_->recv(data, n, src); }
  double busy_seconds() const override { return inner_->busy_seconds(); }
  // NCCL's health, and an Error naming the group when an IPC all-reduce gave up on a peer.
  void check_healthy() override;

 private:
  std::unique_ptr<comm::Communicator> inner_;
  std::unique_ptr<IpcAllReduce> ipc_;
  CudaBackend& backend_;
  std::string name_;
};

// Every rank of `nccl`'s group calls this together. Rank 0 decides whether to try (off with
// SHARDLM_CUSTOM_ALLREDUCE=0 on rank 0; SHARDLM_CUSTOM_ALLREDUCE_MAX_BYTES sizes the buffer,
// 8 MiB by default) and the group follows; every rank maps every other's buffer and one
// all-reduce of known values is checked on every rank. When all of that works on every rank the
// result is an IpcCommunicator over `nccl`, otherwise `nccl` itself. `how` receives a line for
// the log: what was chosen and why.
std::unique_ptr<comm::Communicator> with_ipc_all_reduce(std::unique_ptr<comm::Communicator> nccl,
                                                        CudaBackend& backend,
                                                        const comm::DeviceCommOptions& options,
                                                        std::string* how = nullptr);

}  // namespace shardlm::cuda
