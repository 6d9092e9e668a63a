// Timed collectives for `shardlm doctor` and the benchmarks: all-reduce latency and bandwidth over
// a communicator, and ping-pong latency and bandwidth between two ranks. Every rank of the
// communicator calls the same functions in the same order.
#pragma once

#include <cstddef>

#include "comm/communicator.h"

namespace shardlm::parallel {

struct CollectiveTiming {
  size_t bytes = 0;
  double seconds = 0;  // median of the timed repetitions
  // bytes / seconds; for an all-reduce also NCCL's bus bandwidth (algbw x 2(n-1)/n).
  double algbw() const { return seconds > 0 ? static_cast<double>(bytes) / seconds : 0; }
  double busbw(int ranks) const { return algbw() * 2.0 * (ranks - 1) / ranks; }
};

// All-reduce of `bytes` (float sum) repeated `iters` times after one warm-up.
CollectiveTiming time_all_reduce(comm::Communicator& comm, size_t bytes, int iters);

// All-gather of `bytes` per rank (the tensor-parallel forward's collective).
CollectiveTiming time_all_gather(comm::Communicator& comm, size_t bytes, int iters);

// Ping-pong between ranks a and b (other ranks return at once): one-way time = round trip / 2.
CollectiveTiming time_ping_pong(comm::Communicator& comm, int a, int b, size_t bytes, int iters);

}  // namespace shardlm::parallel
