// Per-request sampling settings, with the meanings vLLM and the OpenAI API give them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shardlm {

class CompiledGrammar;  // engine/grammar.h

// Temperatures below this sample greedily: dividing logits by 1e-38 overflows float to inf and
// the draw turns to noise (vLLM uses the same cut).
constexpr float kGreedyTemperature = 1e-5f;

struct SamplingParams {
  float temperature = 1.f;         // 0 (or below kGreedyTemperature) = greedy
  int top_k = 0;                   // 0 or negative = disabled
  float top_p = 1.f;               // nucleus mass in (0, 1]
  float min_p = 0.f;               // drop tokens below min_p * p(most likely)
  float repetition_penalty = 1.f;  // > 1 discourages tokens seen in prompt or output
  float presence_penalty = 0.f;    // subtracted once from tokens present in the output
  float frequency_penalty = 0.f;   // subtracted per occurrence in the output
  std::optional<uint64_t> seed;    // same seed, same output
  int max_tokens = 256;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  // Text that ends the output when it appears in it (matched across token boundaries); the match
  // itself is left out of the output unless include_stop_str_in_output.
  std::vector<std::string> stop;
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;  // of the output text
  // Log-probabilities of each sampled token under the model (before penalties and temperature),
  // with this many most likely alternatives; unset = none.
  std::optional<int> logprobs;
  // Log-probabilities of the prompt's tokens (from the second on: the first has no context), with
  // this many alternatives each; unset = none. The prompt is then computed in full (no prefix
  // cache hit) with logits for every position, on the host sampler.
  std::optional<int> prompt_logprobs;
  // Structured output: only tokens this grammar allows are sampled, and the output ends when it
  // is complete (engine/grammar.h); null = unconstrained. Sampled on the host.
  std::shared_ptr<const CompiledGrammar> grammar;
  // OpenAI's logit_bias: (token, bias in [-100, 100]) added to the token's logit before sampling
  // (after the logprobs are read). Sampled on the host.
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool greedy() const { return temperature < kGreedyTemperature; }

  static constexpr int kMaxLogprobs = 20;

  // Throws Error naming the first out-of-range value.
  void validate() const;
};

}  // namespace shardlm
