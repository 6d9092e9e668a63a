// The collective operations the ranks of a group use, behind one interface: Gloo for CPU tensors
// (gloo_communicator), NCCL for GPU tensors (the CUDA backend). Every call has the group's timeout:
// a rank that died makes the others fail with an Error instead of hanging.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace shardlm::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place: every rank ends with the element-wise sum over ranks.
  virtual void all_reduce_sum(float* data, size_t n) = 0;
  // The root's bytes to every rank (receivers' vectors are resized).
  virtual void broadcast(std::vector<char>& bytes, int root) = 0;
  // Concatenates every rank's n floats, in rank order, into `out` on the root (size() * n floats;
  // unused elsewhere).
  virtual void gather(const float* data, size_t n, float* out, int root) = 0;
  // Every rank's n floats, in rank order, into `out` (size() * n floats) on every rank.
  virtual void all_gather(const float* data, size_t n, float* out) = 0;
  virtual void barrier() = 0;
  // Point to point (pipeline stages): n floats to / from one rank; blocks until done.
  virtual void send(const float* data, size_t n, int dst) = 0;
  virtual void recv(float* data, size_t n, int src) = 0;
  // Seconds spent in the calls above so far.
  virtual double busy_seconds() const = 0;
};

}  // namespace shardlm::dist
