// StepUploads: packing the step's integer arrays into one buffer and uploading it.
#include "backend/cuda/step_uploads.h"

#include <algorithm>
#include <numeric>

#include "backend/cuda/cuda_check.h"
#include "core/env_flag.h"

namespace shardlm::cuda {

StepUploads::StepUploads(cudaStream_t stream)
    : stream_(stream), split_mixed_(env_flag("SHARDLM_CUDA_MIXED_SPLIT", true)) {}

StepUploads::~StepUploads() {
  cudaFree(dev_);
}

int64_t StepUploads::pack(const int32_t* p, int64_t n) {
  const auto offset = static_cast<int64_t>(pack_.size());
  if (p && n > 0) pack_.insert(pack_.end(), p, p + n);
  return offset;
}

StepUploads::AttnOffsets StepUploads::pack_attention(const AttentionSeq* seqs, int n_seqs,
                                                     int block_size) {
  // Fixed-size parts first and the block tables last, so that every device pointer the kernels
  // receive depends only on the batch's shape (what a captured CUDA graph needs).
  AttnOffsets o{};
  for (int s = 0; s < n_seqs; ++s) {
    o.n_rows = std::max(o.n_rows, seqs[s].first_row + seqs[s].n_tokens);
    o.max_keys = std::max(o.max_keys, seqs[s].n_past + seqs[s].n_tokens);
  }
  o.seqs = static_cast<int64_t>(pack_.size());
  pack_.resize(pack_.size() + 4 * static_cast<size_t>(n_seqs));
  o.rows = static_cast<int64_t>(pack_.size());
  pack_.resize(pack_.size() + static_cast<size_t>(o.n_rows), -1);
  o.tables = static_cast<int64_t>(pack_.size());
  // The sequences of one query row (decodes) first, each part in the step's order: the attention
  // op runs them apart from the prefill chunks (AttentionBatch::n_single_row_seqs).
  order_.resize(static_cast<size_t>(n_seqs));
  std::iota(order_.begin(), order_.end(), 0);
  const auto rest = std::stable_partition(order_.begin(), order_.end(),
                                          [&](int s) { return seqs[s].n_tokens == 1; });
  o.n_single = static_cast<int>(rest - order_.begin());
  for (int s = 0; s < n_seqs; ++s) {
    const AttentionSeq& q = seqs[order_[static_cast<size_t>(s)]];
    const int64_t blocks = (int64_t{q.n_past} + q.n_tokens + block_size - 1) / block_size;
    const int64_t table_offset = pack(q.block_table, blocks) - o.tables;
    int32_t* d = pack_.data() + o.seqs + 4 * s;
    d[0] = q.first_row, d[1] = q.n_tokens, d[2] = q.n_past;
    d[3] = static_cast<int32_t>(table_offset);
    for (int32_t r = 0; r < q.n_tokens; ++r) pack_[o.rows + q.first_row + r] = s;
  }
  return o;
}

StepArrays StepUploads::begin(const StepIndices& s, uint64_t step) {
  pack_.clear();
  const int64_t tokens = pack(s.tokens, s.n_tokens);
  const int64_t positions = pack(s.positions, s.n_tokens);
  const int64_t slots = pack(s.slots, s.n_tokens);
  const int64_t rows = pack(s.logit_rows, s.n_logit_rows);
  attn_ = pack_attention(s.seqs, s.n_seqs, s.block_size);
  upload();
  StepArrays a;
  a.tokens = device_array(tokens, s.tokens ? s.n_tokens : 0, step);
  a.positions = device_array(positions, s.positions ? s.n_tokens : 0, step);
  a.slots = device_array(slots, s.slots ? s.n_tokens : 0, step);
  a.logit_rows = device_array(rows, s.logit_rows ? s.n_logit_rows : 0, step);
  a.seqs = {s.seqs, s.n_seqs, step};
  return a;
}

IndexArray StepUploads::device_array(int64_t offset, int64_t n, uint64_t step) const {
  return {dev_ + offset, n, MemSpace::kDevice, step};
}

void StepUploads::upload() {
  const auto n = static_cast<int64_t>(pack_.size());
  if (n > capacity_) {
    SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old buffer may still be read
    cudaFree(dev_);
    ++generation_;
    capacity_ = std::max<int64_t>(n * 2, 4096);
    SHARDLM_CUDA_CHECK(cudaMalloc(&dev_, static_cast<size_t>(capacity_) * sizeof(int32_t)));
  }
  if (n > 0) {
    // From pageable memory: the call returns once pack_ has been staged, so it may be reused.
    SHARDLM_CUDA_CHECK(cudaMemcpyAsync(dev_, pack_.data(), static_cast<size_t>(n) * 4,
                                       cudaMemcpyHostToDevice, stream_));
  }
}

AttentionBatch StepUploads::attention() const {
  AttentionBatch b;
  b.seqs = reinterpret_cast<const DeviceAttnSeq*>(dev_ + attn_.seqs);
  b.tables = dev_ + attn_.tables;
  b.row_seq = dev_ + attn_.rows;
  b.n_rows = attn_.n_rows;
  b.max_keys = attn_.max_keys;
  b.n_single_row_seqs = split_mixed_ ? attn_.n_single : 0;
  return b;
}

}  // namespace shardlm::cuda
