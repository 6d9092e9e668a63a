// SampleBuffers: packing, uploads and the copy back of sampled tokens.
#include "backend/cuda/sample_buffers.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

template <typename T>
void alloc_pair(T*& host, T*& dev, int64_t n) {
  SHARDLM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host), sizeof(T) * n));
  SHARDLM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&dev), sizeof(T) * n));
}

template <typename T>
void free_pair(T*& host, T*& dev) {
  cudaFreeHost(host);
  cudaFree(dev);
  host = dev = nullptr;
}

DeviceRowSampling device_row(const RowSampling& p, int32_t penalty_offset) {
  DeviceRowSampling d{};
  d.temperature = p.temperature;
  d.top_p = p.top_p;
  d.min_p = p.min_p;
  d.repetition_penalty = p.repetition_penalty;
  d.presence_penalty = p.presence_penalty;
  d.frequency_penalty = p.frequency_penalty;
  d.top_k = p.top_k;
  d.penalty_offset = penalty_offset;
  d.n_penalties = p.n_penalties;
  d.seed = p.seed;
  d.counter = p.counter;
  return d;
}

}  // namespace

SampleBuffers::~SampleBuffers() {
  if (stream_) cudaStreamSynchronize(stream_);
  release();
}

void SampleBuffers::release() {
  free_pair(params_host_, params_dev_);
  free_pair(penalties_host_, penalties_dev_);
  free_pair(tokens_host_, tokens_dev_);
  free_pair(logprobs_host_, logprobs_dev_);
}

void SampleBuffers::reserve(int64_t rows, int64_t n_penalties) {
  if (rows <= row_capacity_ && n_penalties <= penalty_capacity_) return;
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  release();
  row_capacity_ = std::max({rows, 2 * row_capacity_, int64_t{64}});
  penalty_capacity_ = std::max({n_penalties, 2 * penalty_capacity_, int64_t{1024}});
  alloc_pair(params_host_, params_dev_, row_capacity_);
  alloc_pair(penalties_host_, penalties_dev_, penalty_capacity_);
  alloc_pair(tokens_host_, tokens_dev_, row_capacity_);
  alloc_pair(logprobs_host_, logprobs_dev_, row_capacity_);
}

void SampleBuffers::run(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
                        int32_t* tokens, float* logprobs) {
  if (rows == 0) return;
  if (vocab >= (int64_t{1} << 31)) fail("a vocabulary of {} tokens is too large to sample", vocab);
  int64_t n_penalties = 0;
  int32_t widest = 0;
  for (int64_t r = 0; r < rows; ++r) {
    n_penalties += params[r].n_penalties;
    widest = std::max(widest, params[r].n_penalties);
  }
  reserve(rows, n_penalties);
  int64_t offset = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const RowSampling& p = params[r];
    params_host_[r] = device_row(p, static_cast<int32_t>(offset));
    if (p.n_penalties > 0)
      std::memcpy(penalties_host_ + offset, p.penalties, sizeof(PenaltyToken) * p.n_penalties);
    offset += p.n_penalties;
  }
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(params_dev_, params_host_, sizeof(DeviceRowSampling) * rows,
                                     cudaMemcpyHostToDevice, stream_));
  if (n_penalties > 0) {
    SHARDLM_CUDA_CHECK(cudaMemcpyAsync(penalties_dev_, penalties_host_,
                                       sizeof(PenaltyToken) * n_penalties, cudaMemcpyHostToDevice,
                                       stream_));
  }
  apply_penalties(logits, rows, vocab, params_dev_, penalties_dev_, widest, stream_);
  sample_rows(logits, rows, vocab, params_dev_, tokens_dev_, logprobs ? logprobs_dev_ : nullptr,
              stream_);
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(tokens_host_, tokens_dev_, sizeof(int32_t) * rows,
                                     cudaMemcpyDeviceToHost, stream_));
  if (logprobs) {
    SHARDLM_CUDA_CHECK(cudaMemcpyAsync(logprobs_host_, logprobs_dev_, sizeof(float) * rows,
                                       cudaMemcpyDeviceToHost, stream_));
  }
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::copy(tokens_host_, tokens_host_ + rows, tokens);
  if (logprobs) std::copy(logprobs_host_, logprobs_host_ + rows, logprobs);
}

}  // namespace shardlm::cuda
