// Continuous batching: each step picks which requests run and how many of their tokens, as small
// named steps with explicit inputs. Running requests (decodes and unfinished chunked prefills) go
// first, then waiting ones are admitted first-come first-served within the token budget
// (max_num_batched_tokens, long prompts split across steps) and max_num_seqs. When KV blocks run
// out, the youngest running request is preempted by recompute: its blocks are freed and it goes
// back to the front of the queue.
//
// Virtual engines (several pipeline steps in flight, vLLM's virtual engines): with n > 1 every
// running request belongs to one of n virtual engines, chosen when it is admitted, and
// schedule(v) picks only v's requests, admits new ones into v (no more than an even share of the
// requests there are, so the batches in flight stay balanced) and preempts only v's. The engine
// schedules v only after v's previous batch came back, so a request is never in two batches in
// flight and one that finished in a batch is gone before its virtual engine's next.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
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
  // Splits the running requests over n virtual engines (1 by default: one batch at a time).
  // Only while nothing runs.
  void set_virtual_engines(int n);
  int virtual_engines() const { return n_virtual_; }
  // The next batch of virtual engine `v` (0 <= v < virtual_engines()).
  SchedulerOutput schedule(int v = 0);
  // The virtual engine of a running request (-1 when it is not running).
  int virtual_engine_of(const Request* request) const;
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
    int v = 0;  // the virtual engine being scheduled
    bool preempted_any = false;
  };
  void schedule_running(Budget& budget, SchedulerOutput& out);
  void schedule_waiting(Budget& budget, SchedulerOutput& out);
  // Grows the blocks of running_[index] for n_tokens more, preempting younger requests (or this
  // one, when it is the youngest) until it fits. False when this request was preempted.
  bool reserve_or_preempt(size_t index, int32_t n_tokens, Budget& budget, SchedulerOutput& out);
  // Preempts the youngest running request of virtual engine v.
  void preempt_youngest(int v, SchedulerOutput& out);
  bool in(const Request* r, int v) const { return n_virtual_ == 1 || virtual_engine_of(r) == v; }
  // Requests virtual engine v may still admit this step.
  int admission_room(int v) const;
  // Admission of waiting_.front(); false (nothing changed) when its first chunk does not fit.
  bool admit(Request* request, int32_t max_tokens, int v, SchedulerOutput& out);

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;  // in admission order: the back is the youngest
  int n_virtual_ = 1;
  std::unordered_map<const Request*, int> virtual_of_;  // running request -> virtual engine
  std::vector<int> n_running_of_;                       // [virtual engine] running requests
};

}  // namespace shardlm
