// A float sum all-reduce for ranks on one host through a POSIX shared-memory segment: each rank
// copies its data into its slot, a barrier, each rank sums its 1/size share of the elements over
// every slot in rank order into the result area, a barrier, and every rank copies the result out.
// Two barriers per chunk of up to `slot_floats` elements and no system call on the way, where Gloo
// crosses TCP loopback. Every rank ends with the same bits (one fixed order of the sums).
//
// Who may touch what: between the barriers a rank writes only its own slot (before the first) and
// its own share of the result (between them); everything else is read-only. The segment's name is
// unlinked once every rank has it mapped, so nothing is left in /dev/shm when a rank dies.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace shardlm::comm {

class ShmAllReduce {
 public:
  struct Header;  // the segment's first page (shm_all_reduce.cpp)
  // The segment's size for `size` ranks with slots of slot_floats floats.
  static size_t segment_bytes(int size, size_t slot_floats);
  // Rank 0 creates the segment `name` ("/shardlm-..."), writes `nonce` into it and returns; the
  // others open it and throw Error when it is missing or holds another nonce (another host).
  // Throws Error naming the segment and the errno when it cannot be made or mapped.
  ShmAllReduce(const std::string& name, int rank, int size, size_t slot_floats, uint64_t nonce,
               std::chrono::milliseconds timeout);
  ~ShmAllReduce();
  ShmAllReduce(const ShmAllReduce&) = delete;
  ShmAllReduce& operator=(const ShmAllReduce&) = delete;

  // Removes the segment's name (call once every rank has opened it; the mapping stays).
  void unlink();
  // In place: the element-wise sum over ranks, in chunks of slot_floats. Throws Error when a rank
  // does not reach a barrier within the timeout (it died or stopped calling), or as soon as a
  // waiting rank sees that a peer's process ended (process_mark.h) or that a peer destroyed its
  // ShmAllReduce (it left a broken group): within about 100 ms.
  void all_reduce_sum(float* data, size_t n);
  // Every rank waits for every other (also used to know that all have mapped the segment).
  void barrier();

 private:
  void reduce_chunk(float* data, size_t n);
  float* slot(int r) const;
  float* result() const;
  void fail_if_a_peer_ended() const;

  std::string name_;
  int rank_, size_;
  size_t slot_floats_;
  std::chrono::milliseconds timeout_;
  size_t bytes_ = 0;
  void* base_ = nullptr;
  Header* header_ = nullptr;
  bool owner_ = false;  // rank 0: unlinks the name if nobody did
};

}  // namespace shardlm::comm
