// Turns the engine's sampled tokens into what a client receives: incrementally detokenized text,
// stop strings matched across token boundaries (the request is then ended with reason "stop"),
// log-probabilities, and a final output carrying the finish reason. Runs on the engine's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

namespace shardlm {

// New output of one request since its previous RequestOutput.
struct RequestOutput {
  int64_t request_id = 0;
  std::string text;  // complete UTF-8 characters only
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprobs> logprobs;               // one per token in token_ids, when requested
  std::optional<RequestFinishReason> finish_reason;  // set on the last output
  int32_t n_prompt_tokens = 0;                       // totals so far
  int32_t n_output_tokens = 0;

  bool finished() const { return finish_reason.has_value(); }
  // Appends a later output of the same request.
  void merge(RequestOutput&& later);
};

// Text of one request's output: detokenizes, finds stop strings, and holds back the tail that
// could still turn out to be the start of a stop string.
class OutputText {
 public:
  OutputText(const Tokenizer& tokenizer, const SamplingParams& params);
  // Returns true when a stop string completed with this token (the text is then cut there).
  bool push(int32_t token);
  // Text that can be sent now; at the end (final) everything left.
  std::string take_ready(bool final);

 private:
  IncrementalDetokenizer detok_;
  std::vector<std::string> stop_;
  bool include_stop_;
  size_t hold_ = 0;  // longest stop string - 1
  std::string text_;
  size_t sent_ = 0;
  bool stopped_ = false;
};

class OutputProcessor {
 public:
  OutputProcessor(Engine& engine, const Tokenizer& tokenizer);

  void add(int64_t request_id, int32_t n_prompt_tokens, const SamplingParams& params);
  // One output per request that produced tokens or finished in this step. Requests whose stop
  // string appeared are ended in the engine here and reported finished now.
  std::vector<RequestOutput> process(const StepOutput& step);

 private:
  struct State {
    OutputText text;
    RequestOutput pending;
  };
  void on_token(const TokenEvent& event, std::vector<int64_t>& touched);
  RequestOutput take(State& s, int64_t id, std::optional<RequestFinishReason> reason);

  Engine& engine_;
  const Tokenizer& tokenizer_;
  std::unordered_map<int64_t, State> states_;
};

}  // namespace shardlm
