// The host side of CudaBackend::sample: the rows' settings and penalty lists packed into pinned
// host memory, uploaded in two copies, the kernels launched, and the token ids (plus
// log-probabilities) copied back: a few KB each way per step instead of the logits.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/sample.cuh"

namespace shardlm::cuda {

class SampleBuffers {
 public:
  explicit SampleBuffers(cudaStream_t stream) : stream_(stream) {}
  ~SampleBuffers();
  SampleBuffers(const SampleBuffers&) = delete;
  SampleBuffers& operator=(const SampleBuffers&) = delete;

  // Backend::sample on the stream; returns once tokens (and logprobs unless null) are written.
  void run(float* logits, int64_t rows, int64_t vocab, const RowSampling* params, int32_t* tokens,
           float* logprobs);

 private:
  // Grows every buffer (after a sync, doubling) to hold rows rows and n_penalties entries.
  void reserve(int64_t rows, int64_t n_penalties);
  void release();

  cudaStream_t stream_;
  int64_t row_capacity_ = 0, penalty_capacity_ = 0;
  DeviceRowSampling *params_host_ = nullptr, *params_dev_ = nullptr;
  PenaltyToken *penalties_host_ = nullptr, *penalties_dev_ = nullptr;
  int32_t *tokens_host_ = nullptr, *tokens_dev_ = nullptr;
  float *logprobs_host_ = nullptr, *logprobs_dev_ = nullptr;
};

}  // namespace shardlm::cuda
