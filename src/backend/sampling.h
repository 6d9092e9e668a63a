// The per-row settings of Backend::sample: what the engine asks of a device-side sampler, in plain
// C++ (no engine types), shared by the CPU reference and the device kernels.
#pragma once

#include <cstdint>

namespace shardlm {

// A token of the request's history: repetition_penalty applies to every listed token (prompt or
// output), presence and frequency penalties to those with output_count > 0. Tokens are distinct.
struct PenaltyToken {
  int32_t token = 0;
  int32_t output_count = 0;
};

// The tokens a row may draw, in xgrammar's bitmask layout: bit (t % 32) of words[t / 32] set =
// token t allowed; tokens past n_words * 32 are not allowed. No words (the default) = every token
// allowed. Host memory; a grammar's mask (engine/grammar.h), UTF-8 guard included.
struct TokenBitmask {
  const uint32_t* words = nullptr;  // [n_words]
  int32_t n_words = 0;

  bool restricts() const { return words != nullptr; }
  bool allows(int64_t token) const {
    if (!words) return true;
    const int64_t w = token / 32;
    return w < n_words && ((words[w] >> (token % 32)) & 1u);
  }
};

// One row: the token mask (the tokens it clears get -inf logits), then penalties (the meanings of
// engine/sampler.cpp), then temperature (0 = greedy), then the top-k, top-p and min-p cuts, then an
// inverse-CDF draw of the uniform philox_uniform(seed, counter). A seeded request uses its seed and
// its output length as the counter, so its n-th draw is the same whatever the batch.
struct RowSampling {
  float temperature = 1.f;
  int32_t top_k = 0;  // 0 or negative = disabled
  float top_p = 1.f;
  float min_p = 0.f;
  float repetition_penalty = 1.f;
  float presence_penalty = 0.f;
  float frequency_penalty = 0.f;
  uint64_t seed = 0;
  uint64_t counter = 0;
  const PenaltyToken* penalties = nullptr;  // [n_penalties], host memory
  int32_t n_penalties = 0;
  TokenBitmask allowed;  // the tokens the row may draw (default: all)

  bool greedy() const { return temperature <= 0.f; }
};

}  // namespace shardlm
