// How the master hands each step to the other ranks: a StepMessage (step_message.h) sent point to
// point to every worker, without waiting for them (Communicator::isend from a SendRing), so the
// master can run its own stage of step n + 1 while a later stage still runs step n (a collective
// broadcast would wait until every rank had posted its receive, i.e. finished its step). Each
// message is a header (its length in bytes) then the message, padded to whole floats; sends from
// one rank to another arrive in order, so a stage-1 rank reads step n's message before the hidden
// states of step n that the master sends after it.
#pragma once

#include "comm/communicator.h"
#include "parallel/send_ring.h"
#include "parallel/step_message.h"

namespace shardlm::parallel {

class StepSender {
 public:
  // `world`'s rank 0 (the master) sends to every other rank; `steps_in_flight` sizes the ring.
  StepSender(comm::Communicator& world, int steps_in_flight);
  // Starts sending `m` to every worker; throws the Error of an earlier send that failed.
  void send(const StepMessage& m);
  // Sends `m` and waits until every worker took it (heartbeats and shutdown: a rank that is gone
  // fails here).
  void send_and_wait(const StepMessage& m);

 private:
  comm::Communicator& world_;
  SendRing ring_;
};

// A worker: the master's next message (waits up to the group's timeout; the master's heartbeat
// comes every second while idle).
StepMessage receive_step(comm::Communicator& world);

}  // namespace shardlm::parallel
