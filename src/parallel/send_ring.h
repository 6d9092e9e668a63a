// A ring of send buffers for pipeline stages with several steps in flight: a stage copies what it
// sends (hidden states to the next stage, logits to the master) into the next free buffer and
// starts the send without waiting for the receiver (Communicator::isend), so it can run the next
// step while the receiver is still busy with an earlier one. A buffer is reused only after its
// send finished; with more buffers than steps in flight no rank waits on a send in steady state,
// and no two ranks can block on each other's sends (the receiver always drains in order).
#pragma once

#include <memory>
#include <vector>

#include "comm/communicator.h"

namespace shardlm::parallel {

class SendRing {
 public:
  explicit SendRing(size_t depth) : slots_(depth) {}
  // Waits for every send in flight (failures are logged in one line: the group is ending or
  // broken).
  ~SendRing();
  SendRing(const SendRing&) = delete;
  SendRing& operator=(const SendRing&) = delete;

  // A buffer of at least n floats that no send reads any more (waits for the oldest send when
  // every buffer is busy; throws its Error). Fill it, then call send().
  float* next(size_t n);
  // Starts sending the first n floats of the buffer next() returned to `dst`.
  void send(comm::Communicator& comm, size_t n, int dst);
  // Waits for every send in flight; throws the first one's Error.
  void wait_all();

 private:
  struct Slot {
    std::vector<float> data;  // grows to the largest message, then stays
    std::unique_ptr<comm::PendingSend> pending;
  };
  std::vector<Slot> slots_;
  size_t next_ = 0;
};

}  // namespace shardlm::parallel
