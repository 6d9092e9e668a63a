// Sampler implementation. Candidates are kept sorted only as far as needed: top-k or the first 256
// most likely tokens cover almost every top-p cut; a full sort happens only when they do not.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>

namespace shardlm {

int32_t argmax(const float* logits, int32_t vocab) {
  return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
}

Sampler::Sampler(const SamplingParams& params)
    : p_(params), rng_(params.seed ? *params.seed : std::random_device{}()) {}

void Sampler::apply_penalties(float* logits, int32_t vocab, const std::vector<int32_t>& prompt,
                              const std::vector<int32_t>& output) {
  if (p_.repetition_penalty != 1.f) {
    auto penalise = [&](int32_t id) {
      float& l = logits[id];
      l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
    };
    std::vector<bool> seen(static_cast<size_t>(vocab), false);
    for (const auto* seq : {&prompt, &output}) {
      for (int32_t id : *seq) {
        if (id >= 0 && id < vocab && !seen[static_cast<size_t>(id)]) {
          seen[static_cast<size_t>(id)] = true;
          penalise(id);
        }
      }
    }
  }
  if (p_.presence_penalty != 0.f || p_.frequency_penalty != 0.f) {
    counts_.assign(static_cast<size_t>(vocab), 0);
    for (int32_t id : output) {
      if (id >= 0 && id < vocab) ++counts_[static_cast<size_t>(id)];
    }
    for (int32_t id = 0; id < vocab; ++id) {
      const int32_t n = counts_[static_cast<size_t>(id)];
      if (n > 0) logits[id] -= p_.presence_penalty + p_.frequency_penalty * static_cast<float>(n);
    }
  }
}

void Sampler::truncate(std::vector<Candidate>& c) const {
  auto by_value = [](const Candidate& a, const Candidate& b) { return a.value > b.value; };
  size_t keep = c.size();
  if (p_.top_k > 0) keep = std::min(keep, static_cast<size_t>(p_.top_k));
  const size_t head = std::min(keep, size_t{256});
  std::partial_sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(head), c.end(), by_value);
  // Softmax over the kept candidates (values become probabilities).
  const float max_v = c.front().value;
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += std::exp(static_cast<double>(c[i].value - max_v));
  double head_mass = 0;
  for (size_t i = 0; i < head; ++i) head_mass += std::exp(static_cast<double>(c[i].value - max_v));
  if (p_.top_p < 1.f && head < keep && head_mass / total < p_.top_p) {
    std::sort(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(keep), by_value);
  } else if (p_.top_p < 1.f) {
    keep = head;
  }
  for (size_t i = 0; i < keep; ++i) {
    c[i].value = static_cast<float>(std::exp(static_cast<double>(c[i].value - max_v)) / total);
  }
  if (p_.top_p < 1.f) {
    double cum = 0;
    size_t n = 0;
    while (n < keep && cum < p_.top_p) cum += c[n++].value;
    keep = std::max<size_t>(1, n);
  }
  if (p_.min_p > 0.f) {
    const float cut = p_.min_p * c.front().value;
    size_t n = 0;
    for (size_t i = 0; i < keep; ++i) {
      if (c[i].value >= cut) c[n++] = c[i];
    }
    keep = std::max<size_t>(1, n);
  }
  c.resize(keep);
}

int32_t Sampler::sample(float* logits, int32_t vocab, const std::vector<int32_t>& prompt,
                        const std::vector<int32_t>& output) {
  apply_penalties(logits, vocab, prompt, output);
  if (p_.greedy()) return argmax(logits, vocab);
  candidates_.resize(static_cast<size_t>(vocab));
  for (int32_t i = 0; i < vocab; ++i)
    candidates_[static_cast<size_t>(i)] = {i, logits[i] / p_.temperature};
  truncate(candidates_);
  double total = 0;
  for (const auto& c : candidates_) total += c.value;
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  for (const auto& c : candidates_) {
    r -= c.value;
    if (r <= 0) return c.id;
  }
  return candidates_.back().id;
}

}  // namespace shardlm
