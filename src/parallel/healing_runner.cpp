// HealingRunner: the watcher thread swaps the broken runner out, re-forms the group, swaps a new
// one in.
#include "parallel/healing_runner.h"

#include <spdlog/spdlog.h>

#include "core/error.h"

namespace shardlm::parallel {

HealingRunner::HealingRunner(std::shared_ptr<Group> group, const Model& model, Backend& backend,
                             Build build)
    : group_(std::move(group)),
      model_(model),
      backend_(backend),
      build_(std::move(build)),
      vocab_(model.config.vocab_size),
      inner_(build_()),
      in_flight_(inner_->max_in_flight()) {
  watcher_ = std::thread([this] { watch(); });
}

HealingRunner::~HealingRunner() {
  stop_ = true;
  if (watcher_.joinable()) watcher_.join();
  std::unique_ptr<ShardMasterRunner> inner;
  {
    std::lock_guard lock(mu_);
    inner = std::move(inner_);
  }
  inner.reset();  // a healthy group hears the shutdown
  group_->mark_stopped();
}

template <typename F>
void HealingRunner::on_inner(F f) {
  std::lock_guard lock(mu_);
  if (!inner_) fail("{}", failure_text());
  try {
    f(*inner_);
  } catch (const std::exception& e) {
    step_failed_ = true;
    step_error_ = e.what();
    throw;
  }
}

void HealingRunner::execute(const ForwardBatch& batch, float* logits) {
  on_inner([&](ShardMasterRunner& r) { r.execute(batch, logits); });
}

void HealingRunner::submit(const ForwardBatch& batch) {
  on_inner([&](ShardMasterRunner& r) { r.submit(batch); });
}

void HealingRunner::collect(float* logits) {
  on_inner([&](ShardMasterRunner& r) { r.collect(logits); });
}

double HealingRunner::comm_seconds() const {
  std::lock_guard lock(mu_);
  return inner_ ? inner_->comm_seconds() : 0;
}

RankStats HealingRunner::stats() const {
  std::lock_guard lock(mu_);
  return inner_ ? inner_->stats() : RankStats{};
}

std::string HealingRunner::failure() const {
  std::lock_guard lock(mu_);
  if (inner_) return inner_->failure();
  return failure_text();
}

// Under mu_.
std::string HealingRunner::failure_text() const {
  return fmt::format(
      "{}; the group is re-forming by itself ({}); restart the rank that died "
      "with its same command",
      why_, group_->reform_status());
}

bool HealingRunner::broken() const {
  std::lock_guard lock(mu_);
  return inner_ && (step_failed_ || !inner_->failure().empty());
}

void HealingRunner::watch() {
  while (!stop_) {
    if (broken()) {
      try {
        heal();
      } catch (const std::exception& e) {
        if (!stop_) spdlog::error("re-forming the group failed: {}", e.what());
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void HealingRunner::heal() {
  std::unique_ptr<ShardMasterRunner> old;
  {
    std::lock_guard lock(mu_);
    why_ = inner_->failure().empty() ? step_error_ : inner_->failure();
    step_failed_ = false;
    old = std::move(inner_);
  }
  spdlog::error("the group broke ({}); re-forming it without restarting the master", why_);
  old->abandon();
  old.reset();
  group_->reform(model_, backend_, stop_);
  auto fresh = build_();
  {
    std::lock_guard lock(mu_);
    inner_ = std::move(fresh);
    why_.clear();
  }
  ++epoch_;
  spdlog::info("the group re-formed (epoch {}): serving again with fresh K/V caches",
               epoch_.load());
}

}  // namespace shardlm::parallel
