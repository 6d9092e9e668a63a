// The engine's half of device sampling: penalty lists and row settings from a request.
#include "engine/device_sampling.h"

#include <algorithm>
#include <utility>

namespace shardlm {

bool device_samplable(const SamplingParams& p) {
  return !p.logprobs.has_value() && !p.prompt_logprobs.has_value() && p.logit_bias.empty();
}

void append_penalty_tokens(const SamplingParams& p, const std::vector<int32_t>& prompt,
                           const std::vector<int32_t>& output, std::vector<PenaltyToken>& out) {
  const bool repetition = p.repetition_penalty != 1.f;
  if (!repetition && p.presence_penalty == 0.f && p.frequency_penalty == 0.f) return;
  std::vector<std::pair<int32_t, int32_t>> seen;  // (token, 1 if from the output)
  seen.reserve(output.size() + (repetition ? prompt.size() : 0));
  for (int32_t t : output) seen.emplace_back(t, 1);
  if (repetition) {
    for (int32_t t : prompt) seen.emplace_back(t, 0);
  }
  std::sort(seen.begin(), seen.end());
  for (size_t i = 0; i < seen.size();) {
    PenaltyToken e{seen[i].first, 0};
    for (; i < seen.size() && seen[i].first == e.token; ++i) e.output_count += seen[i].second;
    out.push_back(e);
  }
}

RowSampling row_sampling(const SamplingParams& p, uint64_t seed, uint64_t counter) {
  RowSampling r;
  r.temperature = p.greedy() ? 0.f : p.temperature;
  r.top_k = p.top_k;
  r.top_p = p.top_p;
  r.min_p = p.min_p;
  r.repetition_penalty = p.repetition_penalty;
  r.presence_penalty = p.presence_penalty;
  r.frequency_penalty = p.frequency_penalty;
  r.seed = seed;
  r.counter = counter;
  return r;
}

}  // namespace shardlm
