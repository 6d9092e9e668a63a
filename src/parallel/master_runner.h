// The master's side of a group step, shared by tensor and pipeline parallelism: each step's batch
// is sent to every rank as a StepMessage (step_channel.h: without waiting for the ranks) before
// the master runs its own part (run_local); a heartbeat goes out while idle so a dead rank is
// noticed within the steady-state timeout; the destructor tells the workers to shut down.
// worker_loop is the other side.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "comm/communicator.h"
#include "engine/model_runner.h"
#include "parallel/step_channel.h"

namespace shardlm::parallel {

class GroupMasterRunner : public ModelRunner {
 public:
  GroupMasterRunner(comm::Communicator& comm, int32_t vocab,
                    std::chrono::milliseconds heartbeat = std::chrono::seconds(1));
  ~GroupMasterRunner() override;

  int32_t vocab_size() const override { return vocab_; }
  void execute(const ForwardBatch& batch, float* logits) final;
  // Several steps in flight: submit broadcasts the batch and runs the master's part of it
  // (run_submit) without waiting for its logits; collect receives the oldest one's (run_collect).
  void submit(const ForwardBatch& batch) final;
  void collect(float* logits) final;
  double comm_seconds() const override { return comm_.busy_seconds(); }
  // Called when a step's communication fails; its answer (which ranks are gone) is added to the
  // error, so the 503 bodies and the log name the node.
  void set_failure_diagnosis(std::function<std::string()> diagnose) {
    diagnose_ = std::move(diagnose);
  }
  std::string failure() const override;
  // The group broke: destroying this runner must not broadcast the shutdown (the surviving
  // workers are to rejoin, not to exit).
  void abandon() { abandoned_ = true; }

 protected:
  // The master's share of the step; the full logits (logit_rows x vocab) go to `logits`.
  virtual void run_local(const ForwardBatch& batch, float* logits) = 0;
  // The two halves of run_local, for runners whose max_in_flight() exceeds 1.
  virtual void run_submit(const ForwardBatch& batch);
  virtual void run_collect(float* logits);
  // Derived classes call this first in their destructor (the heartbeat must stop before their
  // members go away).
  void stop_heartbeat();
  comm::Communicator& comm_;

 private:
  void heartbeat_loop(std::chrono::milliseconds period);
  // Broadcasts the step to every rank (under mu_).
  void broadcast_step(const ForwardBatch& batch);
  // `error` with the ranks the diagnosis finds gone ("...; not answering: rank 2 on host-c").
  std::string with_diagnosis(const std::string& error) const;

  // Sizes the step sender's ring (--pp-steps-in-flight above it only waits on older sends).
  static constexpr int kMaxStepsInFlight = 8;
  int32_t vocab_;
  StepSender sender_;  // steps, heartbeats and the shutdown to every worker (under mu_)
  std::function<std::string()> diagnose_;
  mutable std::mutex failure_mu_;
  std::string failure_;  // set by the heartbeat when a rank stopped answering
  std::mutex mu_;        // one collective sequence at a time
  std::chrono::steady_clock::time_point last_send_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> abandoned_{false};
  std::thread heartbeat_;
};

// A worker rank: runs `step` for every forward the master broadcasts until shutdown (returns) or
// a failure (throws Error).
void worker_loop(comm::Communicator& comm, const std::function<void(const ForwardBatch&)>& step);

}  // namespace shardlm::parallel
