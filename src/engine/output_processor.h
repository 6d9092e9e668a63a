// Gathers what the engine's step produced for each request into what a client receives: the new
// tokens, their text (detokenized and cut at stop strings by the engine: engine/output_text.h),
// log-probabilities, and a final output carrying the finish reason. Decides nothing: every
// request's end (stop token, stop string, length, abort) comes from the engine. Runs on the
// engine's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "engine/output_text.h"

namespace shardlm {

// New output of one request since its previous RequestOutput.
struct RequestOutput {
  int64_t request_id = 0;
  std::string text;  // complete UTF-8 characters only
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprobs> logprobs;               // one per token in token_ids, when requested
  std::vector<TokenLogprobs> prompt_logprobs;        // prompt tokens 1.., in the first output
  std::optional<RequestFinishReason> finish_reason;  // set on the last output
  int32_t n_prompt_tokens = 0;                       // totals so far
  int32_t n_output_tokens = 0;

  bool finished() const { return finish_reason.has_value(); }
  // Appends a later output of the same request.
  void merge(RequestOutput&& later);
};

class OutputProcessor {
 public:
  // n_resumed: output tokens a resumed request already has (Request::resume), counted in its
  // n_output_tokens though never sent again.
  void add(int64_t request_id, int32_t n_prompt_tokens, int32_t n_resumed = 0);
  // One output per request that produced tokens or finished in this step.
  std::vector<RequestOutput> process(const StepOutput& step);

 private:
  RequestOutput take(RequestOutput& pending, std::optional<RequestFinishReason> reason);

  std::unordered_map<int64_t, RequestOutput> pending_;  // by request id
};

}  // namespace shardlm
