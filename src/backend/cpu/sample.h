// The CPU reference of Backend::sample: penalties, temperature, top-k / top-p / min-p cuts and an
// inverse-CDF draw of the row's Philox uniform, written for clarity (sorts where the device selects
// thresholds by radix passes). The device kernels are tested against these functions.
#pragma once

#include <cstdint>

#include "backend/sampling.h"

namespace shardlm::cpu {

// row[t] = -inf for every token t the mask does not allow (a word at a time: an all-allowed word
// costs one test); nothing when the mask does not restrict.
void apply_token_mask(float* row, int64_t vocab, const TokenBitmask& mask);

// row[token] for each listed token: divided (positive) or multiplied (negative) by
// repetition_penalty, then less presence_penalty + frequency_penalty * output_count when the token
// is in the output. Tokens outside [0, vocab) are ignored.
void apply_penalties(float* row, int64_t vocab, const RowSampling& p);

// The draw of one (already penalised) row, with what the device tests need to judge a
// disagreement: the uniform's position in the kept mass (target, in [0, total)).
struct RowDraw {
  int32_t token = 0;
  float logprob = 0;  // log softmax(row)[token] at temperature 1, before any cut
  double target = 0;
  double total = 0;
};

// Greedy (temperature <= 0): the first maximal logit. Otherwise, with s = row / temperature and
// w = exp(s - max s): keep s >= the k-th largest s (top_k), s >= the largest t whose upper set
// holds top_p of the top-k mass (top_p), and w >= min_p (min_p); then the first token, in id order,
// whose kept cumulative mass exceeds philox_uniform(seed, counter) * (kept mass). Ties at a cut
// are all kept.
RowDraw sample_row(const float* row, int64_t vocab, const RowSampling& p);
// sample_row's token alone, without the log-probability pass (the engine's host sampler).
int32_t sample_token(const float* row, int64_t vocab, const RowSampling& p);

// The kept mass of the ids below `token` under p's cuts (the CDF sample_row inverts).
double kept_mass_before(const float* row, int64_t vocab, const RowSampling& p, int32_t token);

// apply_token_mask, apply_penalties, then sample_row for each of `rows` rows of vocab floats (rows
// modified in place).
void sample_rows(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
                 int32_t* tokens, float* logprobs);

}  // namespace shardlm::cpu
