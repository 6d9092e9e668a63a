// The NCCL communicator of one group (a stage's TP group, or a two-rank pipeline link) on the CUDA
// backend's GPU: all_reduce_sum, all_gather, all_gather_cols, send and recv move device memory and
// are queued on the backend's stream (device_memory() is true; see dist/communicator.h).
// broadcast, gather and barrier are host-memory operations of the step loop: they go to the host
// communicator (Gloo over the same ranks) it was given, so this is a composite of the two.
//
// Timeouts: connecting uses NCCL's non-blocking init, polled until connect_timeout, then aborted
// with an Error naming the group and its ranks. While serving, a watchdog thread aborts the
// communicator when a queued transfer has not completed op_timeout after it was queued, or NCCL
// reports an asynchronous error (a peer died, the network broke); the stream then drains and the
// next call (or check_healthy()) throws an Error saying which transfer failed. Plain C++: no CUDA
// or NCCL header is included here.
#pragma once

#include <memory>

#include "backend/cuda/cuda_backend.h"
#include "comm/communicator.h"
#include "comm/device_comm_options.h"
#include "comm/store.h"

namespace shardlm::cuda {

class NcclCommunicator : public comm::Communicator {
 public:
  // Rank 0 makes the unique id and sets it under options.prefix + "nccl-id"; the others wait for
  // it (connect_timeout). `host` may be null (then broadcast, gather and barrier throw).
  NcclCommunicator(comm::StoreClient& store, const comm::DeviceCommOptions& options,
                   CudaBackend& backend, std::unique_ptr<comm::Communicator> host);
  ~NcclCommunicator() override;

  int rank() const override;
  int size() const override;
  bool device_memory() const override { return true; }
  void all_reduce_sum(float* data, size_t n) override;
  void broadcast(std::vector<char>& bytes, int root) override;
  void gather(const float* data, size_t n, float* out, int root) override;
  void all_gather(const float* data, size_t n, float* out) override;
  // One ncclAllGather into a device scratch buffer, then one strided copy per rank on the stream.
  void all_gather_cols(const float* local, int64_t rows, int64_t cols, float* full) override;
  void barrier() override;
  // To another rank: ncclSend / ncclRecv. To this rank itself: send copies into a buffer of the
  // communicator and the matching recv, which must come next, copies it out (both on the stream).
  void send(const float* data, size_t n, int dst) override;
  void recv(float* data, size_t n, int src) override;
  double busy_seconds() const override;
  void check_healthy() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardlm::cuda
