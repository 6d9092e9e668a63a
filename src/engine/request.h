// One generation request as the engine tracks it: a single sequence of prompt + output token ids,
// its sampling settings and sampler, its KV block table, and a small state machine
// (waiting -> running -> finished | aborted; running -> preempted -> running).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/grammar.h"
#include "engine/logprobs.h"
#include "engine/output_text.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"
#include "kv/block_manager.h"

namespace shardlm {

enum class RequestStatus { kWaiting, kRunning, kPreempted, kFinished, kAborted };
enum class RequestFinishReason { kStop, kLength, kAbort };

const char* to_string(RequestStatus status);
const char* to_string(RequestFinishReason reason);  // "stop", "length", "abort" (OpenAI names)

// Seconds on a monotonic clock, for the request's metrics timestamps.
double monotonic_seconds();

struct RequestTimes {
  double arrival = 0;
  double first_scheduled = 0;  // 0 until first admitted: queue time = first_scheduled - arrival
  double first_token = 0;      // time to first token = first_token - arrival
  double last_token = 0;
  double finished = 0;
};

class Request {
 public:
  // tokenizer: the model's, to detokenize the output and find stop strings (null: no text).
  Request(int64_t id, std::vector<int32_t> prompt, const SamplingParams& params,
          const Tokenizer* tokenizer = nullptr);

  int64_t id() const { return id_; }
  RequestStatus status() const { return status_; }
  bool is_finished() const {
    return status_ == RequestStatus::kFinished || status_ == RequestStatus::kAborted;
  }
  std::optional<RequestFinishReason> finish_reason() const { return finish_reason_; }
  const SamplingParams& params() const { return params_; }
  const std::vector<int32_t>& prompt() const { return prompt_; }
  const std::vector<int32_t>& output() const { return output_; }
  // Prompt followed by output: every token whose K/V the sequence needs.
  const std::vector<int32_t>& tokens() const { return tokens_; }
  int32_t n_tokens() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t n_prompt() const { return static_cast<int32_t>(prompt_.size()); }
  int32_t n_output() const { return static_cast<int32_t>(output_.size()); }
  // Tokens whose K/V is in the cache (including a prefix-cache hit).
  int32_t n_computed() const { return n_computed_; }
  int32_t n_uncomputed() const { return n_tokens() - n_computed_; }
  int n_preemptions() const { return n_preemptions_; }
  const RequestTimes& times() const { return times_; }

  BlockTable& block_table() { return blocks_; }
  const BlockTable& block_table() const { return blocks_; }
  Sampler& sampler() { return sampler_; }
  // The output's text so far, with its stop strings; null without a tokenizer.
  OutputText* text() { return text_ ? &*text_ : nullptr; }
  // The key of the request's draws on the host and the device alike (engine/sampler.h): its
  // seed when it gives one, else a random one chosen at creation.
  uint64_t sampling_seed() const { return sampling_seed_; }

  // The matcher of the request's grammar (params().grammar); null when unconstrained.
  GrammarMatcher* grammar() { return matcher_ ? &*matcher_ : nullptr; }
  bool grammar_terminated() const { return matcher_ && matcher_->terminated(); }

  // Prompt log-probabilities (params().prompt_logprobs): entry k is prompt token k + 1's, under
  // the logits at position k. True while some are missing: the prefill then needs the logits of
  // every prompt position, and may not start from a prefix-cache hit.
  bool needs_prompt_logits() const;
  // Records the log-probabilities of the prompt token after `position` from that position's
  // logits; positions already recorded (a prefill run again after preemption) are skipped.
  void add_prompt_logprobs(int32_t position, const float* logits, int32_t vocab);
  // The prompt's log-probabilities gathered so far, moved out (once, with the first token).
  std::vector<TokenLogprobs> take_prompt_logprobs();

  // A request migrated from a worker that died mid-stream: `output` are the tokens that worker
  // had generated and streamed. Before the request is first scheduled: they become its output
  // (they count toward max_tokens, penalties and the sampler's draw numbers, and the grammar and
  // stop-string matcher advance over them, with their text counted as sent), and the prefill
  // computes prompt + output, as after a preemption. False when the grammar refuses a token.
  bool resume(const std::vector<int32_t>& output);

  // State transitions; each asserts it is legal from the current state.
  void on_scheduled(double now);                 // waiting/preempted -> running
  void on_preempted();                           // running -> preempted; K/V must be recomputed
  void on_computed(int32_t n_tokens);            // n more tokens' K/V written
  void append_token(int32_t token, double now);  // a sampled token
  void finish(RequestFinishReason reason, double now);  // -> finished, or aborted for kAbort

 private:
  int64_t id_;
  std::vector<int32_t> prompt_;
  std::vector<int32_t> output_;
  std::vector<int32_t> tokens_;
  SamplingParams params_;
  uint64_t sampling_seed_;  // before sampler_, which is built with it
  Sampler sampler_;
  std::optional<OutputText> text_;
  std::optional<GrammarMatcher> matcher_;
  std::vector<TokenLogprobs> prompt_logprobs_;  // [n_prompt - 1] once the prefill is done
  bool prompt_logprobs_taken_ = false;
  RequestStatus status_ = RequestStatus::kWaiting;
  std::optional<RequestFinishReason> finish_reason_;
  int32_t n_computed_ = 0;
  int n_preemptions_ = 0;
  BlockTable blocks_;
  RequestTimes times_;
};

}  // namespace shardlm
