// The host side of CudaBackend::sample: the rows' settings, penalty lists and token masks packed
// into one pinned host buffer and uploaded in one copy, the kernels launched, and the token ids
// (plus log-probabilities) copied back: a few KB each way per step instead of the logits (a
// constrained row adds its mask, (vocab + 31) / 32 words).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/sample.cuh"
#include "backend/cuda/step_timeline.h"

namespace shardlm::cuda {

class SampleBuffers {
 public:
  // timeline (may be null): told before the wait for the tokens (the step's end on the GPU).
  SampleBuffers(cudaStream_t stream, StepTimeline* timeline)
      : stream_(stream), timeline_(timeline) {}
  ~SampleBuffers();
  SampleBuffers(const SampleBuffers&) = delete;
  SampleBuffers& operator=(const SampleBuffers&) = delete;

  // Backend::sample on the stream; returns once tokens (and logprobs unless null) are written.
  void run(float* logits, int64_t rows, int64_t vocab, const RowSampling* params, int32_t* tokens,
           float* logprobs);

 private:
  // Where each part of a step's upload lies in the staging buffers (byte offsets).
  struct Layout {
    size_t penalties = 0, masks = 0, scratch = 0, bytes = 0;  // uploaded: [0, scratch)
    int32_t widest_penalty_list = 0;
    bool any_mask = false;
  };
  static Layout layout(int64_t rows, int64_t vocab, const RowSampling* params);
  // Packs the rows' settings, penalty lists and masks into the pinned buffer.
  void pack(int64_t rows, int64_t vocab, const RowSampling* params, const Layout& l);
  // Grows every buffer (after a sync, doubling) to hold rows rows and `bytes` of upload.
  void reserve(int64_t rows, size_t bytes);
  void release();

  cudaStream_t stream_;
  StepTimeline* timeline_;
  int64_t row_capacity_ = 0;
  size_t upload_capacity_ = 0;
  char *upload_host_ = nullptr, *upload_dev_ = nullptr;  // [params | penalties | masks | scratch]
  int32_t *tokens_host_ = nullptr, *tokens_dev_ = nullptr;
  float *logprobs_host_ = nullptr, *logprobs_dev_ = nullptr;
};

}  // namespace shardlm::cuda
