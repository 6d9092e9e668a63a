// The peer-visible memory of the IPC all-reduce (ipc_all_reduce.cuh) for one rank of a group of
// processes on GPUs of one host: a staging buffer and signal words in one allocation, its CUDA
// IPC handle swapped with every rank (through `exchange`, a host collective such as Gloo's
// broadcast), the peers' allocations opened, and all_reduce_sum on this rank's stream. Plain C++:
// no CUDA header.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace shardlm::cuda {

class IpcAllReduce {
 public:
  // Every rank's bytes, in rank order, given this rank's: called once, by every rank together.
  using Exchange = std::function<std::vector<std::string>(const std::string& mine)>;

  // Collective. Throws Error (on every rank: a rank that could not make or open an allocation
  // says so through the exchange, so the others do not open a broken group) naming what failed.
  IpcAllReduce(int rank, int world, int device, size_t capacity_floats,
               std::chrono::milliseconds timeout, const Exchange& exchange);
  ~IpcAllReduce();
  IpcAllReduce(const IpcAllReduce&) = delete;
  IpcAllReduce& operator=(const IpcAllReduce&) = delete;

  size_t capacity_floats() const;
  // In place on device memory `data` (n <= capacity_floats()), queued on `stream` (a
  // cudaStream_t). Throws when an earlier call timed out (see failed()).
  void all_reduce_sum(float* data, size_t n, void* stream);
  // Whether a queued call gave up waiting for a peer (it died or never launched): its data and
  // everything after it are garbage. Reads mapped host memory; no synchronisation.
  bool failed() const;
  // "one-shot" or "two-shot": the kernel a message of n floats takes.
  const char* algorithm(size_t n) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardlm::cuda
