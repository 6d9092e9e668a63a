// The master's runner for a group that heals: it holds the current group runner and, when a rank
// dies (a step fails, or the idle heartbeat finds a rank gone), rebuilds it on a thread of its
// own: the group re-forms as its next generation (Group::reform: every surviving worker and the
// restarted rank join again, handshake and weights check included), a new runner with fresh K/V
// caches is made, and epoch() grows. Meanwhile the API stays up and failure() says what the
// group waits for (503 on /health and on requests); AsyncEngine clears the prefix cache when the
// epoch changes and serves again. None of the peers heals a group without restarting it.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "parallel/group.h"
#include "parallel/shard_runner.h"

namespace shardlm::parallel {

class HealingRunner : public ModelRunner {
 public:
  using Build = std::function<std::unique_ptr<ShardMasterRunner>()>;
  // `group` has joined; `build` makes a runner on its current communicators.
  HealingRunner(std::shared_ptr<Group> group, const Model& model, Backend& backend, Build build);
  ~HealingRunner() override;  // stops a re-forming in progress; ends the group

  int32_t vocab_size() const override { return vocab_; }
  void execute(const ForwardBatch& batch, float* logits) override;
  int max_in_flight() const override { return in_flight_; }
  void submit(const ForwardBatch& batch) override;
  void collect(float* logits) override;
  double comm_seconds() const override;
  std::string failure() const override;
  uint64_t epoch() const override { return epoch_.load(); }
  // The master rank's own figures (empty while re-forming).
  RankStats stats() const;

 private:
  void watch();
  bool broken() const;
  std::string failure_text() const;  // under mu_
  void heal();
  // Runs `f` on the current runner under mu_; a failure marks the group for re-forming.
  template <typename F>
  void on_inner(F f);

  std::shared_ptr<Group> group_;
  const Model& model_;
  Backend& backend_;
  Build build_;
  int32_t vocab_;
  mutable std::mutex mu_;  // guards inner_, why_ (a step holds it while it runs)
  std::unique_ptr<ShardMasterRunner> inner_;
  int in_flight_;             // inner_'s max_in_flight (the same for every runner build_ makes)
  std::string why_;           // the failure that started the re-forming
  std::string step_error_;    // the last failed step's error
  bool step_failed_ = false;  // a step threw: heal even if the heartbeat has not noticed
  std::atomic<uint64_t> epoch_{0};
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace shardlm::parallel
