// Turns a row of logits into the next token: penalties, temperature, top-k, top-p, min-p, then a
// draw from a per-request RNG (seeded when the request gives a seed).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "engine/sampling_params.h"

namespace shardlm {

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // logits: vocab floats, modified in place. prompt/output: token history for penalties.
  int32_t sample(float* logits, int32_t vocab, const std::vector<int32_t>& prompt,
                 const std::vector<int32_t>& output);

 private:
  struct Candidate {
    int32_t id;
    float value;
  };
  void apply_penalties(float* logits, int32_t vocab, const std::vector<int32_t>& prompt,
                       const std::vector<int32_t>& output);
  void truncate(std::vector<Candidate>& c) const;

  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
  std::vector<int32_t> counts_;
};

int32_t argmax(const float* logits, int32_t vocab);

}  // namespace shardlm
