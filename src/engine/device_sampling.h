// What the engine hands Backend::sample for a request: its RowSampling and the sparse penalty list
// built from its history, so that only token ids (not logits) need leave a device.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/sampling.h"
#include "engine/sampling_params.h"

namespace shardlm {

// True when Backend::sample does everything the request asks of a step (it returns no top
// alternatives, so requests wanting logprobs stay on the host sampler). A grammar's mask travels
// with the row (RowSampling::allowed), so constrained requests sample on the device too.
bool device_samplable(const SamplingParams& p);

// The distinct tokens the penalties touch, sorted by id, appended to out: prompt and output tokens
// when repetition_penalty is not 1, else output tokens when presence or frequency penalties are
// set, else none; each with its number of occurrences in the output.
void append_penalty_tokens(const SamplingParams& p, const std::vector<int32_t>& prompt,
                           const std::vector<int32_t>& output, std::vector<PenaltyToken>& out);

// The row settings without the penalty list (the caller points penalties at its entries); the
// draw counter is the request's output length, so a seeded request draws the same n-th uniform
// whatever the batch.
RowSampling row_sampling(const SamplingParams& p, uint64_t seed, uint64_t counter);

}  // namespace shardlm
