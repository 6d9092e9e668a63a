// Sampling on the GPU: token masks (structured output), penalties, then one block per row choosing
// a token (greedy argmax, or top-k / top-p cuts found by radix selection and an inverse-CDF draw of
// the row's Philox uniform). CPU reference: cpu::apply_penalties and cpu::sample_row
// (backend/cpu/sample.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/sampling.h"

namespace shardlm::cuda {

// RowSampling in device memory: the penalty list is a stretch of the step's PenaltyToken array,
// the token mask a stretch of the step's mask words ((vocab + 31) / 32 per masked row).
struct DeviceRowSampling {
  float temperature, top_p, min_p;
  float repetition_penalty, presence_penalty, frequency_penalty;
  int32_t top_k;
  int32_t penalty_offset, n_penalties;
  int32_t mask_offset;  // the row's first mask word; -1: every token allowed
  uint64_t seed, counter;
};

// logits[r][t] = -inf ([rows][vocab], in place) for each token t whose bit is clear in row r's
// mask (masks: device words at params[r].mask_offset; rows without one are left alone). The CPU
// reference is cpu::apply_token_mask.
void apply_token_masks(float* logits, int64_t rows, int64_t vocab, const DeviceRowSampling* params,
                       const uint32_t* masks, cudaStream_t stream);

// Applies each row's penalties to logits ([rows][vocab], in place); max_penalties bounds
// n_penalties (it sizes the launch).
void apply_penalties(float* logits, int64_t rows, int64_t vocab, const DeviceRowSampling* params,
                     const PenaltyToken* penalties, int32_t max_penalties, cudaStream_t stream);

// The device scratch sample_rows needs for rows rows of vocab logits (16-byte aligned).
size_t sample_scratch_bytes(int64_t rows, int64_t vocab);

// tokens[r] (and logprobs[r] unless null) for each row of logits ([rows][vocab]), device memory.
void sample_rows(const float* logits, int64_t rows, int64_t vocab, const DeviceRowSampling* params,
                 int32_t* tokens, float* logprobs, void* scratch, cudaStream_t stream);

}  // namespace shardlm::cuda
