// Sampler: the request's RowSampling (engine/device_sampling.h) run through the CPU reference of
// Backend::sample.
#include "engine/sampler.h"

#include <algorithm>
#include <random>

#include "backend/cpu/sample.h"
#include "engine/device_sampling.h"

namespace shardlm {

int32_t argmax(const float* logits, int32_t vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}

uint64_t sampling_seed(const SamplingParams& params) {
  if (params.seed) return *params.seed;
  static thread_local std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

Sampler::Sampler(const SamplingParams& params, uint64_t seed) : p_(params), seed_(seed) {}

int32_t Sampler::sample(float* logits, int32_t vocab, const std::vector<int32_t>& prompt,
                        const std::vector<int32_t>& output) {
  return sample(logits, vocab, prompt, output, output.size());
}

int32_t Sampler::sample(float* logits, int32_t vocab, const std::vector<int32_t>& prompt,
                        const std::vector<int32_t>& output, uint64_t counter) {
  // The same row settings and penalty list Engine::build_row_sampling gives the device.
  RowSampling row = row_sampling(p_, seed_, counter);
  penalties_.clear();
  append_penalty_tokens(p_, prompt, output, penalties_);
  row.penalties = penalties_.data();
  row.n_penalties = static_cast<int32_t>(penalties_.size());
  cpu::apply_penalties(logits, vocab, row);
  return cpu::sample_token(logits, vocab, row);
}

}  // namespace shardlm
