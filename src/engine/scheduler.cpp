// Scheduler: running requests first, then FCFS admission, preemption by recompute.
#include "engine/scheduler.h"

#include <algorithm>
#include <cassert>

namespace shardlm {

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks)
    : config_(config), blocks_(blocks), n_running_of_(1, 0) {
  running_.reserve(static_cast<size_t>(config.max_num_seqs));
}

void Scheduler::set_virtual_engines(int n) {
  assert(n >= 1 && running_.empty());
  n_virtual_ = n;
  n_running_of_.assign(static_cast<size_t>(n), 0);
}

int Scheduler::virtual_engine_of(const Request* request) const {
  const auto it = virtual_of_.find(request);
  return it == virtual_of_.end() ? -1 : it->second;
}

void Scheduler::add(Request* request) {
  assert(request->status() == RequestStatus::kWaiting);
  waiting_.push_back(request);
}

int64_t Scheduler::n_preempted_waiting() const {
  return std::count_if(waiting_.begin(), waiting_.end(),
                       [](const Request* r) { return r->status() == RequestStatus::kPreempted; });
}

SchedulerOutput Scheduler::schedule(int v) {
  assert(v >= 0 && v < n_virtual_);
  SchedulerOutput out;
  Budget budget{config_.max_num_batched_tokens, v};
  schedule_running(budget, out);
  // Admitting new work in a step that had to preempt would only preempt again next step.
  if (!budget.preempted_any) schedule_waiting(budget, out);
  out.n_tokens = config_.max_num_batched_tokens - budget.tokens;
  return out;
}

void Scheduler::schedule_running(Budget& budget, SchedulerOutput& out) {
  for (size_t i = 0; i < running_.size() && budget.tokens > 0; ++i) {
    Request* r = running_[i];
    if (!in(r, budget.v)) continue;
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
    // r is the youngest of its virtual engine when no later running request shares it.
    bool self = true;
    for (size_t j = index + 1; j < running_.size() && self; ++j) self = !in(running_[j], budget.v);
    preempt_youngest(budget.v, out);
    if (self) return false;
  }
  return true;
}

void Scheduler::preempt_youngest(int v, SchedulerOutput& out) {
  auto it = running_.end();
  while (!in(*(it - 1), v)) --it;  // there is one: the request being reserved for
  Request* victim = *(it - 1);
  running_.erase(it - 1);
  --n_running_of_[static_cast<size_t>(v)];
  virtual_of_.erase(victim);
  blocks_.free(victim->block_table());
  victim->on_preempted();
  waiting_.push_front(victim);  // it keeps its place ahead of requests that arrived later
  out.preempted.push_back(victim);
}

void Scheduler::schedule_waiting(Budget& budget, SchedulerOutput& out) {
  int room = admission_room(budget.v);
  while (!waiting_.empty() && budget.tokens > 0 && room-- > 0 &&
         static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Request* r = waiting_.front();
    if (!admit(r, budget.tokens, budget.v, out)) break;  // strict FCFS: nobody overtakes the head
    budget.tokens -= out.scheduled.back().n_tokens;
  }
}

// One virtual engine: no limit but max_num_seqs. Several: an even share of every request there
// is (running and waiting), so each batch in flight gets about as many.
int Scheduler::admission_room(int v) const {
  if (n_virtual_ == 1) return config_.max_num_seqs;
  const int all = static_cast<int>(running_.size() + waiting_.size());
  const int share = std::min((all + n_virtual_ - 1) / n_virtual_,
                             (config_.max_num_seqs + n_virtual_ - 1) / n_virtual_);
  return share - n_running_of_[static_cast<size_t>(v)];
}

bool Scheduler::admit(Request* request, int32_t max_tokens, int v, SchedulerOutput& out) {
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
  virtual_of_[request] = v;
  ++n_running_of_[static_cast<size_t>(v)];
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
    --n_running_of_[static_cast<size_t>(virtual_of_.at(request))];
    virtual_of_.erase(request);
  } else if (auto w = std::find(waiting_.begin(), waiting_.end(), request); w != waiting_.end()) {
    waiting_.erase(w);
  }
  blocks_.free(request->block_table());
}

}  // namespace shardlm
