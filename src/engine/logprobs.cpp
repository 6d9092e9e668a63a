// Log-softmax of one row, and its top entries.
#include "engine/logprobs.h"

#include <algorithm>
#include <cmath>

namespace shardlm {

namespace {

double log_sum_exp(const float* logits, int32_t vocab) {
  const float max_v = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int32_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max_v));
  return max_v + std::log(sum);
}

}  // namespace

TokenLogprobs token_logprobs(const float* logits, int32_t vocab, int32_t token, int top_n) {
  const double lse = log_sum_exp(logits, vocab);
  TokenLogprobs out;
  out.token = token;
  out.logprob = static_cast<float>(logits[token] - lse);
  out.rank = 1 + static_cast<int32_t>(std::count_if(
                     logits, logits + vocab, [&](float v) { return v > logits[token]; }));
  const int32_t n = std::min<int32_t>(std::max(top_n, 0), vocab);
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  for (int32_t i = 0; i < vocab; ++i) ids[static_cast<size_t>(i)] = i;
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (int32_t i = 0; i < n; ++i) {
    const int32_t id = ids[static_cast<size_t>(i)];
    out.top.emplace_back(id, static_cast<float>(logits[id] - lse));
  }
  return out;
}

}  // namespace shardlm
