// StepUploads: packing the step's integer arrays into one buffer and uploading it.
#include "backend/cuda/step_uploads.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"

namespace shardlm::cuda {

StepUploads::~StepUploads() {
  cudaFree(step_.dev);
  cudaFree(spot_.dev);
}

int64_t StepUploads::pack(const int32_t* p, int64_t n) {
  const auto offset = static_cast<int64_t>(pack_.size());
  if (n > 0) pack_.insert(pack_.end(), p, p + n);
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
  for (int s = 0; s < n_seqs; ++s) {
    const AttentionSeq& q = seqs[s];
    const int64_t blocks = (int64_t{q.n_past} + q.n_tokens + block_size - 1) / block_size;
    const int64_t table_offset = pack(q.block_table, blocks) - o.tables;
    int32_t* d = pack_.data() + o.seqs + 4 * s;
    d[0] = q.first_row, d[1] = q.n_tokens, d[2] = q.n_past;
    d[3] = static_cast<int32_t>(table_offset);
    for (int32_t r = 0; r < q.n_tokens; ++r) pack_[o.rows + q.first_row + r] = s;
  }
  return o;
}

void StepUploads::begin(const StepIndices& s) {
  pack_.clear();
  sections_.clear();
  auto section = [&](const int32_t* p, int64_t n) {
    if (p && n > 0) sections_.push_back({p, n, pack(p, n)});
  };
  section(s.tokens, s.n_tokens);
  section(s.positions, s.n_tokens);
  section(s.slots, s.n_tokens);
  section(s.logit_rows, s.n_logit_rows);
  step_attn_ = pack_attention(s.seqs, s.n_seqs, s.block_size);
  step_seqs_ = s.seqs;
  step_n_seqs_ = s.n_seqs;
  step_block_size_ = s.block_size;
  upload(step_);
}

const int32_t* StepUploads::ints(const int32_t* host, int64_t n) {
  for (const Section& sec : sections_) {
    if (sec.host == host && n <= sec.n) return step_.dev + sec.offset;
  }
  pack_.clear();
  pack(host, n);
  return upload_spot();
}

AttentionBatch StepUploads::attention(const AttentionSeq* seqs, int n_seqs, int block_size) {
  if (seqs == step_seqs_ && n_seqs == step_n_seqs_ && block_size == step_block_size_) {
    return batch_at(step_.dev, step_attn_);
  }
  pack_.clear();
  const AttnOffsets o = pack_attention(seqs, n_seqs, block_size);
  return batch_at(upload_spot(), o);
}

int32_t* StepUploads::upload(Buffer& buf) {
  const auto n = static_cast<int64_t>(pack_.size());
  if (n > buf.capacity) {
    SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the old buffer may still be read
    cudaFree(buf.dev);
    ++generation_;
    buf.capacity = std::max<int64_t>(n * 2, 4096);
    SHARDLM_CUDA_CHECK(cudaMalloc(&buf.dev, static_cast<size_t>(buf.capacity) * sizeof(int32_t)));
  }
  if (n > 0) {
    // From pageable memory: the call returns once pack_ has been staged, so it may be reused.
    SHARDLM_CUDA_CHECK(cudaMemcpyAsync(buf.dev, pack_.data(), static_cast<size_t>(n) * 4,
                                       cudaMemcpyHostToDevice, stream_));
  }
  return buf.dev;
}

int32_t* StepUploads::upload_spot() {
  const auto n = static_cast<int64_t>(pack_.size());
  const int64_t need = (n + 3) / 4 * 4;  // keep every copy 16-byte aligned
  if (spot_used_ + need > spot_.capacity) {
    if (4 * need > spot_.capacity) {  // grow; the op's earlier copies are then stale (see .h)
      SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
      cudaFree(spot_.dev);
      spot_.capacity = std::max<int64_t>(8 * need, 65536);
      SHARDLM_CUDA_CHECK(
          cudaMalloc(&spot_.dev, static_cast<size_t>(spot_.capacity) * sizeof(int32_t)));
    }
    spot_used_ = 0;  // wrap: the kernels that read the start were queued before this copy
  }
  int32_t* dst = spot_.dev + spot_used_;
  if (n > 0) {
    SHARDLM_CUDA_CHECK(cudaMemcpyAsync(dst, pack_.data(), static_cast<size_t>(n) * 4,
                                       cudaMemcpyHostToDevice, stream_));
  }
  spot_used_ += need;
  return dst;
}

AttentionBatch StepUploads::batch_at(const int32_t* base, const AttnOffsets& o) const {
  AttentionBatch b;
  b.seqs = reinterpret_cast<const DeviceAttnSeq*>(base + o.seqs);
  b.tables = base + o.tables;
  b.row_seq = base + o.rows;
  b.n_rows = o.n_rows;
  b.max_keys = o.max_keys;
  return b;
}

}  // namespace shardlm::cuda
