// The serving engine's step loop: schedule -> run -> postprocess. Requests come in with
// add_request, each step() runs one batch of many requests (prefill chunks and decodes together)
// and reports new tokens and finished requests. Single-threaded: the caller (offline LLM or the
// server's engine thread) serialises add_request / abort_request / step.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/sampling.h"
#include "engine/logprobs.h"
#include "engine/model_runner.h"
#include "engine/request.h"
#include "engine/request_validation.h"
#include "engine/scheduler.h"
#include "engine/step_profile.h"
#include "kv/block_manager.h"

namespace shardlm {

struct EngineConfig {
  SchedulerConfig scheduler;
  BlockManagerConfig blocks;
  std::vector<int32_t> eos_token_ids;

  // Throws Error naming the first inconsistent setting.
  void validate() const;
};

struct TokenEvent {
  int64_t request_id;
  int32_t token;
  std::optional<TokenLogprobs> logprobs;  // when the request asked for them
  std::string text{};  // the output text this token made ready (engine/output_text.h)
  // With a request's first token when it asked for prompt_logprobs: prompt tokens 1.. n_prompt-1.
  std::vector<TokenLogprobs> prompt_logprobs{};
};

struct FinishedRequest {
  int64_t id = 0;
  std::vector<int32_t> prompt;
  std::vector<int32_t> output;
  RequestFinishReason reason = RequestFinishReason::kStop;
  RequestTimes times;
  int n_preemptions = 0;
  std::string final_text;  // the end of the output text, held back until the request ended
};

// What one step did, for callers (streaming, metrics) and for scheduler iteration tests.
struct StepOutput {
  std::vector<std::pair<int64_t, int32_t>> scheduled;  // (request id, tokens run)
  std::vector<int64_t> preempted;
  std::vector<TokenEvent> tokens;         // tokens sampled this step, in schedule order
  std::vector<FinishedRequest> finished;  // including requests aborted since the last step
  int32_t n_tokens = 0;
  int32_t n_prompt_tokens = 0;  // of n_tokens, those of prefills (prompt, or recompute)
};

class Engine {
 public:
  // tokenizer: the model's, with which every request's output is detokenized and its stop strings
  // found in the step (TokenEvent::text); null (scheduler tests) produces no text and refuses
  // requests with stop strings.
  Engine(const EngineConfig& config, ModelRunner& runner, const Tokenizer* tokenizer = nullptr);

  // What validate_request checks requests against (output_must_fit false). Immutable: safe to
  // read from any thread.
  RequestLimits limits() const;
  // Reserves n consecutive request ids and returns the first. The one counter of request ids
  // (every front door takes its ids here); safe to call from any thread.
  int64_t new_request_ids(int64_t n = 1) { return next_id_.fetch_add(n); }
  // Submits a request: validate_request against limits() (throws InvalidRequest, and queues
  // nothing, when it fails), then queues it under a new id, which it returns.
  int64_t add_request(std::vector<int32_t> prompt, const SamplingParams& params);
  // Queues a request validated where it was submitted, under an id from new_request_ids
  // (AsyncEngine, LLM); asserts only. `resumed`: the output a worker that died mid-stream had
  // already generated (Request::resume; validated with the request).
  void add_validated_request(int64_t id, std::vector<int32_t> prompt, const SamplingParams& params,
                             const std::vector<int32_t>& resumed = {});
  // Ends the request now with reason abort and frees its blocks; the next step() reports it
  // finished. False when the id is unknown or already finished. Every other end (stop token, stop
  // string, length) is decided in the step, by check_stop.
  bool abort_request(int64_t id);
  // With a runner of several steps in flight (ModelRunner::max_in_flight), each step() serves one
  // virtual engine in turn: it collects and postprocesses that virtual engine's batch in flight
  // (the oldest), then schedules and submits its next one; its output holds the tokens of the
  // collected batch and the scheduled requests of the submitted one.
  StepOutput step();
  bool has_unfinished() const {
    return scheduler_.has_unfinished() || !ended_.empty() || !in_flight_.empty();
  }
  // Batches submitted and not yet collected.
  size_t batches_in_flight() const { return in_flight_.size(); }

  const EngineConfig& config() const { return config_; }
  const Scheduler& scheduler() const { return scheduler_; }
  const BlockManager& block_manager() const { return blocks_; }
  // Prefix-cache changes to `listener` (BlockManager::set_event_listener); only before serving.
  void set_kv_event_listener(KvEventListener listener) {
    blocks_.set_event_listener(std::move(listener));
  }
  // The K/V behind every cached prefix are gone (the runner was rebuilt): forget them.
  void reset_prefix_cache() { blocks_.reset_prefix_cache(); }
  const ModelRunner& runner() const { return runner_; }
  // For work between steps on the engine thread (engine/kv_block_transfer.h): the KV transfer
  // attaches, reads, writes and registers cache blocks as the scheduler would.
  ModelRunner& runner() { return runner_; }
  BlockManager& block_manager_between_steps() { return blocks_; }
  const Request* find(int64_t id) const;
  // SHARDLM_STEP_PROFILE=1: the step's phases (the engine's own and its caller's, who marks
  // StepProfile::kOutputs and kDeliver).
  StepProfile& step_profile() { return profile_; }

 private:
  // A batch submitted to a runner of several steps in flight, waiting for its logits.
  struct InFlight {
    int virtual_engine = 0;
    SchedulerOutput batch;
    std::vector<size_t> logit_rows;  // logit_rows_ of the batch
  };
  // Reports the batch's requests and tokens; runs and postprocesses it when one step at a time.
  SchedulerOutput schedule_step(int virtual_engine, StepOutput& out);
  StepOutput step_pipelined();
  // Collects the oldest batch in flight and postprocesses it, then ends the requests aborted
  // while they were in it.
  void collect_oldest(StepOutput& out);
  bool is_in_flight(int64_t id) const;
  void run(const SchedulerOutput& batch);
  ForwardBatch build_batch(const SchedulerOutput& batch) const;
  void postprocess(const SchedulerOutput& batch, StepOutput& out);
  void sample(Request& request, float* logits, StepOutput& out);
  // Prompt log-probabilities from the logits rows of scheduled request i (every position's, when
  // its chunk asked for them).
  void gather_prompt_logprobs(Request& request, size_t i);
  // logit_rows_[i] .. logit_rows_[i + 1]: the logits rows of scheduled request i.
  void index_logit_rows(const ForwardBatch& fb);
  // Device sampling for this step: the runner supports it and every request can use it; else the
  // whole step samples on the host.
  bool samples_on_device(const SchedulerOutput& batch) const;
  // rows_ (and penalty_tokens_ they point into) for each scheduled request, in batch order, and
  // constrained_, the rows whose grammar gives their token mask.
  void build_row_sampling(const SchedulerOutput& batch);
  // Each constrained row's token mask from its grammar into step_masks_, pointed at by its
  // RowSampling::allowed; runs while the device computes the step's forward.
  void fill_token_masks();
  // Appends the sampled token to its request (and its text) and the step's events, and ends the
  // request at a stop.
  void emit(Request& request, TokenEvent event, StepOutput& out);
  // The one place a request's end is decided: EOS or a stop token (stop), then max_tokens or the
  // context (length), then a stop string the token completed (stop).
  std::optional<RequestFinishReason> check_stop(const Request& request, int32_t token,
                                                bool stop_string) const;
  void finish(Request& request, RequestFinishReason reason, StepOutput& out);
  static FinishedRequest summary(Request& request);

  EngineConfig config_;
  ModelRunner& runner_;
  const Tokenizer* tokenizer_;
  BlockManager blocks_;
  Scheduler scheduler_;
  std::unordered_map<int64_t, std::unique_ptr<Request>> requests_;
  std::vector<FinishedRequest> ended_;  // aborted by abort_request, reported by the next step
  std::vector<float> logits_;           // [max_num_seqs, vocab], allocated once
  std::vector<float> raw_row_;          // a row's logits before sampling, for logprobs
  std::vector<uint32_t> token_mask_;     // a grammar's allowed tokens, one bit each
  std::vector<size_t> logit_rows_;      // [scheduled + 1] first logits row of each request
  bool device_step_ = false;            // the current step's tokens are in sampled_
  std::vector<RowSampling> rows_;       // [scheduled] device sampling settings
  std::vector<PenaltyToken> penalty_tokens_;
  std::vector<std::pair<size_t, Request*>> constrained_;  // (row, request) with a grammar
  struct MaskSpan {
    size_t row, first, words;  // rows_[row]'s mask: step_masks_[first, first + words)
  };
  std::vector<MaskSpan> mask_spans_;
  std::vector<uint32_t> step_masks_;  // the constrained rows' masks, one after another
  bool overlap_masks_;                // masks filled during the forward (else before it)
  std::vector<int32_t> sampled_;  // [scheduled] tokens sampled on the device
  std::atomic<int64_t> next_id_{0};
  std::deque<InFlight> in_flight_;          // oldest first
  std::vector<int64_t> aborted_in_flight_;  // abort_request on a request in a batch in flight
  int next_virtual_ = 0;                    // the virtual engine the next step serves
  StepProfile profile_;
};

}  // namespace shardlm
