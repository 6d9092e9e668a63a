// The collective operations the ranks of a group use, behind one interface: Gloo for host memory
// (gloo_communicator), NCCL for GPU memory (backend/cuda/nccl_communicator, made through
// dist/device_communicator.h). Every call has the group's timeout: a rank that died makes the
// others fail with an Error instead of hanging.
//
// Memory: on a communicator whose device_memory() is false every pointer is host memory and every
// call returns once its data is in place. On one whose device_memory() is true (NCCL) the data
// pointers of all_reduce_sum, all_gather, all_gather_cols, send and recv are device memory of the
// backend it was made for, and those calls only enqueue the transfer on the backend's stream: it
// completes in stream order, before any op queued after it reads the data. broadcast, gather and
// barrier always take host memory and block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shardlm::comm {

// A send that Communicator::isend started: wait() returns once the data has left the sender's
// buffer, or throws Error (the peer is gone, or the group's timeout passed). The destructor waits
// too, and only logs a failure.
class PendingSend {
 public:
  virtual ~PendingSend() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // See the file comment: true when the data ops take device memory on the backend's stream.
  virtual bool device_memory() const { return false; }

  // In place: every rank ends with the element-wise sum over ranks.
  virtual void all_reduce_sum(float* data, size_t n) = 0;
  // The root's bytes to every rank (receivers' vectors are resized).
  virtual void broadcast(std::vector<char>& bytes, int root) = 0;
  // Concatenates every rank's n floats, in rank order, into `out` on the root (size() * n floats;
  // unused elsewhere).
  virtual void gather(const float* data, size_t n, float* out, int root) = 0;
  // Every rank's n floats, in rank order, into `out` (size() * n floats) on every rank.
  virtual void all_gather(const float* data, size_t n, float* out) = 0;
  // Every rank's [rows][cols] block side by side: full[i][r * cols + j] = rank r's local[i][j]
  // ([rows][size() * cols] floats), on every rank. Exact (copies only). The default runs
  // all_gather into a host scratch buffer and interleaves on the host (host memory only).
  virtual void all_gather_cols(const float* local, int64_t rows, int64_t cols, float* full);
  virtual void barrier() = 0;
  // Point to point (pipeline stages): n floats to / from one rank; blocks until done (host
  // memory) or is ordered on the stream (device memory).
  virtual void send(const float* data, size_t n, int dst) = 0;
  virtual void recv(float* data, size_t n, int src) = 0;
  // send without waiting (pipeline stages with several steps in flight): `data` must stay
  // unchanged until the returned handle's wait() returns. Sends to one rank arrive in the order
  // they were started. The default sends at once (blocking) and returns a finished handle; a
  // device communicator's send is ordered on the stream already.
  virtual std::unique_ptr<PendingSend> isend(const float* data, size_t n, int dst);
  // Seconds spent in the calls above so far (device memory: the transfers' time on the stream,
  // as far as they have completed).
  virtual double busy_seconds() const = 0;
  // Throws the Error of a transfer that failed after its call returned (device memory: a watchdog
  // aborted it); a no-op for host communicators, whose calls throw themselves. Call it before
  // trusting data a device transfer wrote.
  virtual void check_healthy() {}

 private:
  std::vector<float> gather_scratch_;  // the default all_gather_cols's receive buffer
};

}  // namespace shardlm::comm
