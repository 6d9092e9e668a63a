// Log-probabilities of a sampled token and its most likely alternatives under the model's raw
// distribution (log-softmax of the logits before penalties, temperature or truncation), as the
// OpenAI API's `logprobs` reports them.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace shardlm {

struct TokenLogprobs {
  int32_t token = 0;
  float logprob = 0;
  int32_t rank = 1;  // 1 + the number of tokens more likely than `token` (vLLM's rank)
  std::vector<std::pair<int32_t, float>> top;  // (token, logprob), most likely first
};

// logits: vocab raw scores. top_n alternatives (0 = none).
TokenLogprobs token_logprobs(const float* logits, int32_t vocab, int32_t token, int top_n);

}  // namespace shardlm
