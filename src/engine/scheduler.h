// Continuous batching: each step picks which requests run and how many of their tokens, as small
// named steps with explicit inputs. Running requests (decodes and unfinished chunked prefills) go
// first, then waiting ones are admitted first-come first-served within the token budget
// (max_num_batched_tokens, long prompts split across steps) and max_num_seqs. When KV blocks run
// out, the youngest running request is preempted by recompute: its blocks are freed and it goes
// back to the front of the queue.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/request.h"
#include "kv/block_manager.h"

namespace shardlm {

struct SchedulerConfig {
  int max_num_seqs = 64;
  int max_num_batched_tokens = 512;
  int max_model_len = 2048;
};

struct ScheduledRequest {
  Request* request = nullptr;
  int32_t n_tokens = 0;  // tokens run this step, from request->n_computed()
};

struct SchedulerOutput {
  std::vector<ScheduledRequest> scheduled;  // running ones first, then newly admitted
  std::vector<Request*> preempted;          // preempted this step, youngest first
  int32_t n_tokens = 0;                     // total tokens this step
  bool empty() const { return scheduled.empty(); }
};

// Contract: the scheduler owns the waiting and running queues and is the only caller of the
// BlockManager's mutating methods; requests are owned by the engine and outlive their time here.
class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockManager& blocks);

  const SchedulerConfig& config() const { return config_; }
  void add(Request* request);  // joins the back of the waiting queue
  SchedulerOutput schedule();
  // After the step ran: advances each scheduled request's computed tokens and commits its full
  // blocks to the prefix cache.
  void on_step_done(const SchedulerOutput& output);
  // Removes a finished or aborted request from the queues and frees its blocks.
  void remove(Request* request);

  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }
  const std::deque<Request*>& waiting() const { return waiting_; }
  const std::vector<Request*>& running() const { return running_; }
  int64_t n_preempted_waiting() const;  // waiting requests that were preempted

 private:
  struct Budget {
    int32_t tokens;
    bool preempted_any = false;
  };
  void schedule_running(Budget& budget, SchedulerOutput& out);
  void schedule_waiting(Budget& budget, SchedulerOutput& out);
  // Grows the blocks of running_[index] for n_tokens more, preempting younger requests (or this
  // one, when it is the youngest) until it fits. False when this request was preempted.
  bool reserve_or_preempt(size_t index, int32_t n_tokens, Budget& budget, SchedulerOutput& out);
  void preempt_youngest(SchedulerOutput& out);
  // Admission of waiting_.front(); false (nothing changed) when its first chunk does not fit.
  bool admit(Request* request, int32_t max_tokens, SchedulerOutput& out);

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;  // in admission order: the back is the youngest
};

}  // namespace shardlm
