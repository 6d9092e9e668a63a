// The all-reduce kernels for GPUs of one host that map each other's memory (CUDA IPC): every rank
// stages its input in its own peer-visible buffer, then the ranks meet at barriers made of flags
// written into each other's signal areas, and read each other's buffers directly (NVLink or PCIe
// peer-to-peer). One launch per all-reduce and no host round trip, so it is cheap for the small
// messages of decode steps where NCCL's fixed cost dominates.
//
// one-shot: every rank sums all ranks' whole buffers (n elements read per rank per peer).
// two-shot: rank r sums slice r of every buffer into its own buffer (reduce-scatter), then every
//   rank copies slice p from rank p (all-gather): 2n/world reads per rank per peer, for larger n.
// Both add the ranks in rank order, so every rank gets the same bits, equal to a host sum in rank
// order (float adds only, no contraction).
//
// Barriers: block b of a rank waits only for block b of the others (same grid everywhere; the
// grid is kept small enough to be resident at once). Each block's calls are numbered by a counter
// in this rank's (not shared) memory, so a launch needs no host argument that changes per call
// and can be captured in a CUDA graph. A wait that passes `timeout_ns` (a peer died or never
// launched) sets *error and returns: the data is then garbage and the host must say so.
// CPU reference: the rank-order sum in tests/cuda/test_cuda_ipc_all_reduce.cpp.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace shardlm::cuda {

constexpr int kIpcMaxRanks = 8;
constexpr int kIpcBlocks = 32;  // barrier slots per rank; the grid never exceeds it

// One rank's peer-visible area: [data: capacity floats][signals: kIpcSignalWords uint32].
constexpr size_t kIpcSignalWords = size_t{3} * kIpcBlocks * kIpcMaxRanks;  // start, middle, end

struct IpcPeers {
  float* data[kIpcMaxRanks];       // each rank's staging buffer, as this rank maps it
  uint32_t* signal[kIpcMaxRanks];  // each rank's signal words, as this rank maps it
};

enum class IpcAlgo { kOneShot, kTwoShot };

// In place on `data` (device memory of this rank, n floats, n <= the staging capacity): copies
// it into this rank's staging buffer and runs the kernel on `stream`. `counters` is kIpcBlocks
// uint32 of this rank's own device memory, zero at the start; `error` is mapped host memory.
void ipc_all_reduce(const IpcPeers& peers, int rank, int world, float* data, size_t n,
                    IpcAlgo algo, uint32_t* counters, uint64_t timeout_ns, int* error,
                    cudaStream_t stream);

}  // namespace shardlm::cuda
