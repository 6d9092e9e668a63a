// The host sampler: a request's next token from its row of logits, drawn exactly as
// Backend::sample draws it on a device. There is one sampling scheme, defined by the device
// kernel's contract (backend/sampling.h) and its CPU reference (backend/cpu/sample.h): penalties,
// temperature, top-k / top-p / min-p cuts, then an inverse-CDF draw of the uniform
// philox_uniform(seed, counter), where seed is the request's key (its seed, or a random one) and
// counter its output length. The host path builds the same RowSampling the device path does and
// runs the reference on it, so a request's n-th token uses the same uniform on either path: a
// seeded request gives the same tokens whether its step sampled on the device or, because another
// request in the batch asked for logprobs, on the host (up to the last-bit float differences
// between the kernel's sums and the reference's, which the CUDA tests bound).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/sampling.h"
#include "engine/sampling_params.h"

namespace shardlm {

class Sampler {
 public:
  // seed: the key of the request's draws (Request::sampling_seed).
  Sampler(const SamplingParams& params, uint64_t seed);

  // logits: vocab floats, penalised in place. prompt/output: the request's history; the draw is
  // number output.size() of the request's stream (or `counter` when given).
  int32_t sample(float* logits, int32_t vocab, const std::vector<int32_t>& prompt,
                 const std::vector<int32_t>& output);
  int32_t sample(float* logits, int32_t vocab, const std::vector<int32_t>& prompt,
                 const std::vector<int32_t>& output, uint64_t counter);
  uint64_t seed() const { return seed_; }

 private:
  SamplingParams p_;
  uint64_t seed_;
  std::vector<PenaltyToken> penalties_;  // scratch, reused across calls
};

// The first maximal logit (what greedy sampling picks).
int32_t argmax(const float* logits, int32_t vocab);

// The key of a request's draws: its seed when it gives one, else a fresh random one, so that
// unseeded requests draw independently.
uint64_t sampling_seed(const SamplingParams& params);

}  // namespace shardlm
