// SampleBuffers: packing, the one upload and the copy back of sampled tokens.
#include "backend/cuda/sample_buffers.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

template <typename T>
void alloc_pair(T*& host, T*& dev, size_t n) {
  SHARDLM_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host), sizeof(T) * n));
  SHARDLM_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&dev), sizeof(T) * n));
}

template <typename T>
void free_pair(T*& host, T*& dev) {
  cudaFreeHost(host);
  cudaFree(dev);
  host = dev = nullptr;
}

size_t align16(size_t n) {
  return (n + 15) & ~size_t{15};
}

int64_t mask_words(int64_t vocab) {
  return (vocab + 31) / 32;
}

DeviceRowSampling device_row(const RowSampling& p, int32_t penalty_offset, int32_t mask_offset) {
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
  d.mask_offset = mask_offset;
  d.seed = p.seed;
  d.counter = p.counter;
  return d;
}

// The mask's words for a vocab-wide row: words past the mask's are zero (not allowed).
void copy_mask(const TokenBitmask& m, int64_t words, uint32_t* out) {
  const int64_t have = std::min<int64_t>(m.n_words, words);
  std::memcpy(out, m.words, sizeof(uint32_t) * static_cast<size_t>(have));
  std::fill(out + have, out + words, 0u);
}

}  // namespace

SampleBuffers::~SampleBuffers() {
  if (stream_) cudaStreamSynchronize(stream_);
  release();
}

void SampleBuffers::release() {
  free_pair(upload_host_, upload_dev_);
  free_pair(tokens_host_, tokens_dev_);
  free_pair(logprobs_host_, logprobs_dev_);
}

void SampleBuffers::reserve(int64_t rows, size_t bytes) {
  if (rows <= row_capacity_ && bytes <= upload_capacity_) return;
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  release();
  row_capacity_ = std::max({rows, 2 * row_capacity_, int64_t{64}});
  upload_capacity_ = std::max({bytes, 2 * upload_capacity_, size_t{64} << 10});
  alloc_pair(upload_host_, upload_dev_, upload_capacity_);
  alloc_pair(tokens_host_, tokens_dev_, static_cast<size_t>(row_capacity_));
  alloc_pair(logprobs_host_, logprobs_dev_, static_cast<size_t>(row_capacity_));
}

SampleBuffers::Layout SampleBuffers::layout(int64_t rows, int64_t vocab,
                                            const RowSampling* params) {
  Layout l;
  size_t n_penalties = 0, n_masks = 0;
  for (int64_t r = 0; r < rows; ++r) {
    n_penalties += static_cast<size_t>(params[r].n_penalties);
    l.widest_penalty_list = std::max(l.widest_penalty_list, params[r].n_penalties);
    if (params[r].allowed.restricts()) ++n_masks;
  }
  l.any_mask = n_masks > 0;
  l.penalties = align16(sizeof(DeviceRowSampling) * static_cast<size_t>(rows));
  l.masks = align16(l.penalties + sizeof(PenaltyToken) * n_penalties);
  const size_t mask_bytes = sizeof(uint32_t) * n_masks * static_cast<size_t>(mask_words(vocab));
  l.scratch = align16(l.masks + mask_bytes);
  l.bytes = l.scratch + sample_scratch_bytes(rows, vocab);
  return l;
}

void SampleBuffers::pack(int64_t rows, int64_t vocab, const RowSampling* params, const Layout& l) {
  auto* rows_out = reinterpret_cast<DeviceRowSampling*>(upload_host_);
  auto* penalties_out = reinterpret_cast<PenaltyToken*>(upload_host_ + l.penalties);
  auto* masks_out = reinterpret_cast<uint32_t*>(upload_host_ + l.masks);
  const int64_t words = mask_words(vocab);
  int64_t penalty_offset = 0, mask_offset = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const RowSampling& p = params[r];
    const bool masked = p.allowed.restricts();
    rows_out[r] = device_row(p, static_cast<int32_t>(penalty_offset),
                             masked ? static_cast<int32_t>(mask_offset) : -1);
    if (p.n_penalties > 0) {
      std::memcpy(penalties_out + penalty_offset, p.penalties,
                  sizeof(PenaltyToken) * static_cast<size_t>(p.n_penalties));
    }
    penalty_offset += p.n_penalties;
    if (masked) copy_mask(p.allowed, words, masks_out + mask_offset);
    if (masked) mask_offset += words;
  }
}

void SampleBuffers::run(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
                        int32_t* tokens, float* logprobs) {
  if (rows == 0) return;
  if (vocab >= (int64_t{1} << 31)) fail("a vocabulary of {} tokens is too large to sample", vocab);
  const Layout l = layout(rows, vocab, params);
  if (l.bytes / sizeof(uint32_t) >= (size_t{1} << 31)) {
    fail("{} rows of token masks over {} tokens are too many to sample in one step", rows, vocab);
  }
  reserve(rows, l.bytes);
  pack(rows, vocab, params, l);
  SHARDLM_CUDA_CHECK(
      cudaMemcpyAsync(upload_dev_, upload_host_, l.scratch, cudaMemcpyHostToDevice, stream_));
  const auto* params_dev = reinterpret_cast<const DeviceRowSampling*>(upload_dev_);
  if (l.any_mask) {
    apply_token_masks(logits, rows, vocab, params_dev,
                      reinterpret_cast<const uint32_t*>(upload_dev_ + l.masks), stream_);
  }
  apply_penalties(logits, rows, vocab, params_dev,
                  reinterpret_cast<const PenaltyToken*>(upload_dev_ + l.penalties),
                  l.widest_penalty_list, stream_);
  sample_rows(logits, rows, vocab, params_dev, tokens_dev_, logprobs ? logprobs_dev_ : nullptr,
              upload_dev_ + l.scratch, stream_);
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(tokens_host_, tokens_dev_, sizeof(int32_t) * rows,
                                     cudaMemcpyDeviceToHost, stream_));
  if (logprobs) {
    SHARDLM_CUDA_CHECK(cudaMemcpyAsync(logprobs_host_, logprobs_dev_, sizeof(float) * rows,
                                       cudaMemcpyDeviceToHost, stream_));
  }
  if (timeline_) timeline_->end();
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::copy(tokens_host_, tokens_host_ + rows, tokens);
  if (logprobs) std::copy(logprobs_host_, logprobs_host_ + rows, logprobs);
}

}  // namespace shardlm::cuda
