// GroupMasterRunner and worker_loop.
#include "parallel/master_runner.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "parallel/step_channel.h"

namespace shardlm::parallel {

GroupMasterRunner::GroupMasterRunner(comm::Communicator& comm, int32_t vocab,
                                     std::chrono::milliseconds heartbeat)
    : comm_(comm),
      vocab_(vocab),
      sender_(comm, kMaxStepsInFlight),
      last_send_(std::chrono::steady_clock::now()) {
  heartbeat_ = std::thread([this, heartbeat] { heartbeat_loop(heartbeat); });
}

void GroupMasterRunner::stop_heartbeat() {
  stop_ = true;
  if (heartbeat_.joinable()) heartbeat_.join();
}

GroupMasterRunner::~GroupMasterRunner() {
  stop_heartbeat();
  if (abandoned_) return;
  try {
    std::lock_guard lock(mu_);
    sender_.send_and_wait({StepKind::kShutdown, {}});
  } catch (const std::exception& e) {
    spdlog::warn("could not tell the workers to shut down: {}", e.what());
  }
}

void GroupMasterRunner::heartbeat_loop(std::chrono::milliseconds period) {
  while (!stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock || std::chrono::steady_clock::now() - last_send_ < period) continue;
    try {
      sender_.send_and_wait({StepKind::kHeartbeat, {}});
      last_send_ = std::chrono::steady_clock::now();
    } catch (const std::exception& e) {
      const std::string why = with_diagnosis(e.what());
      spdlog::error("the group lost a rank while idle: {}", why);
      std::lock_guard flock(failure_mu_);
      failure_ = why;
      return;  // /health reports it; the next step fails too and ends the requests in flight
    }
  }
}

std::string GroupMasterRunner::failure() const {
  std::lock_guard lock(failure_mu_);
  return failure_;
}

void GroupMasterRunner::broadcast_step(const ForwardBatch& batch) {
  sender_.send({StepKind::kForward, batch});
  last_send_ = std::chrono::steady_clock::now();
}

void GroupMasterRunner::execute(const ForwardBatch& batch, float* logits) {
  std::lock_guard lock(mu_);
  try {
    broadcast_step(batch);
    run_local(batch, logits);
  } catch (const Error& e) {
    fail("{}", with_diagnosis(e.what()));
  }
}

void GroupMasterRunner::submit(const ForwardBatch& batch) {
  std::lock_guard lock(mu_);
  try {
    broadcast_step(batch);
    run_submit(batch);
  } catch (const Error& e) {
    fail("{}", with_diagnosis(e.what()));
  }
}

void GroupMasterRunner::collect(float* logits) {
  std::lock_guard lock(mu_);
  try {
    run_collect(logits);
  } catch (const Error& e) {
    fail("{}", with_diagnosis(e.what()));
  }
}

void GroupMasterRunner::run_submit(const ForwardBatch&) {
  fail("internal: this group runner runs one step at a time (no submit)");
}

void GroupMasterRunner::run_collect(float*) {
  fail("internal: this group runner runs one step at a time (no collect)");
}

std::string GroupMasterRunner::with_diagnosis(const std::string& error) const {
  const std::string gone = diagnose_ ? diagnose_() : "";
  return gone.empty() ? error : fmt::format("{}; not answering: {}", error, gone);
}

void worker_loop(comm::Communicator& comm, const std::function<void(const ForwardBatch&)>& step) {
  while (true) {
    const StepMessage m = receive_step(comm);
    if (m.kind == StepKind::kShutdown) return;
    if (m.kind == StepKind::kHeartbeat) continue;
    step(m.batch);
  }
}

}  // namespace shardlm::parallel
