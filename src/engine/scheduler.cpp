// Scheduler: running requests first, then FCFS admission, preemption by recompute.
#include "engine/scheduler.h"

#include <algorithm>
#include <cassert>

namespace shardlm {

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks)
    : config_(config), blocks_(blocks) {
  running_.reserve(static_cast<size_t>(config.max_num_seqs));
}

void Scheduler::add(Request* request) {
  assert(request->status() == RequestStatus::kWaiting);
  waiting_.push_back(request);
}

int64_t Scheduler::n_preempted_waiting() const {
  return std::count_if(waiting_.begin(), waiting_.end(),
                       [](const Request* r) { return r->status() == RequestStatus::kPreempted; });
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  Budget budget{config_.max_num_batched_tokens};
  schedule_running(budget, out);
  // Admitting new work in a step that had to preempt would only preempt again next step.
  if (!budget.preempted_any) schedule_waiting(budget, out);
  out.n_tokens = config_.max_num_batched_tokens - budget.tokens;
  return out;
}

void Scheduler::schedule_running(Budget& budget, SchedulerOutput& out) {
  for (size_t i = 0; i < running_.size() && budget.tokens > 0; ++i) {
    Request* r = running_[i];
    const int32_t n = std::min(r->n_uncomputed(), budget.tokens);
    if (!reserve_or_preempt(i, n, budget, out)) break;  // r itself was the youngest
    out.scheduled.push_back({r, n});
    budget.tokens -= n;
  }
}

bool Scheduler::reserve_or_preempt(size_t index, int32_t n_tokens, Budget& budget,
                                   SchedulerOutput& out) {
  Request* r = running_[index];
  while (!blocks_.allocate(r->block_table(), r->n_computed() + n_tokens)) {
    budget.preempted_any = true;
    const bool self = index + 1 == running_.size();
    preempt_youngest(out);
    if (self) return false;
  }
  return true;
}

void Scheduler::preempt_youngest(SchedulerOutput& out) {
  Request* victim = running_.back();
  running_.pop_back();
  blocks_.free(victim->block_table());
  victim->on_preempted();
  waiting_.push_front(victim);  // it keeps its place ahead of requests that arrived later
  out.preempted.push_back(victim);
}

void Scheduler::schedule_waiting(Budget& budget, SchedulerOutput& out) {
  while (!waiting_.empty() && budget.tokens > 0 &&
         static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Request* r = waiting_.front();
    if (!admit(r, budget.tokens, out)) break;  // strict FCFS: nobody overtakes the head
    budget.tokens -= out.scheduled.back().n_tokens;
  }
}

bool Scheduler::admit(Request* request, int32_t max_tokens, SchedulerOutput& out) {
  BlockTable& table = request->block_table();
  // A request that wants its prompt's log-probabilities computes the whole prompt.
  const int32_t hit =
      request->needs_prompt_logits() ? 0 : blocks_.match_prefix(table, request->tokens());
  const int32_t n = std::min(request->n_tokens() - hit, max_tokens);
  if (!blocks_.allocate(table, hit + n)) {
    blocks_.free(table);  // gives back the prefix blocks it had attached
    return false;
  }
  blocks_.record_lookup(request->n_tokens(), hit);
  waiting_.pop_front();
  request->on_scheduled(monotonic_seconds());
  request->on_computed(hit);
  running_.push_back(request);
  out.scheduled.push_back({request, n});
  return true;
}

void Scheduler::on_step_done(const SchedulerOutput& output) {
  for (const ScheduledRequest& s : output.scheduled) {
    Request* r = s.request;
    r->on_computed(s.n_tokens);
    blocks_.commit(r->block_table(), r->tokens(), r->n_computed());
  }
}

void Scheduler::remove(Request* request) {
  if (auto it = std::find(running_.begin(), running_.end(), request); it != running_.end()) {
    running_.erase(it);
  } else if (auto w = std::find(waiting_.begin(), waiting_.end(), request); w != waiting_.end()) {
    waiting_.erase(w);
  }
  blocks_.free(request->block_table());
}

}  // namespace shardlm
