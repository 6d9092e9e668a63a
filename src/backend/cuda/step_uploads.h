// The per-step integer arrays (token ids, positions, KV slots, logit rows, attention sequences and
// their block tables) copied to the GPU: all of them in one upload at begin_step, after which ops
// map the host pointers they receive to the copies. A pointer that was not part of the step (an op
// called on its own, as the op tests do) is uploaded on the spot. Uploads are ordered on the
// backend's stream, so a buffer is only rewritten after the kernels that read it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/attention.cuh"

namespace shardlm::cuda {

class StepUploads {
 public:
  explicit StepUploads(cudaStream_t stream) : stream_(stream) {}
  ~StepUploads();
  StepUploads(const StepUploads&) = delete;
  StepUploads& operator=(const StepUploads&) = delete;

  void begin(const StepIndices& s);
  // Device copy of host[0, n).
  const int32_t* ints(const int32_t* host, int64_t n);
  // Bumped whenever a device buffer moves (CUDA graphs captured before then are stale).
  uint64_t generation() const { return generation_; }
  // The most keys any row of the current step's attention sees.
  int step_max_keys() const { return step_attn_.max_keys; }
  // The device form of an attention batch.
  AttentionBatch attention(const AttentionSeq* seqs, int n_seqs, int block_size);

 private:
  struct Section {
    const void* host;
    int64_t n;
    int64_t offset;  // in int32 units into step_
  };
  struct Buffer {
    int32_t* dev = nullptr;
    int64_t capacity = 0;
  };
  // Appends the attention form of seqs to pack_; returns the offsets of seqs, tables and rows.
  struct AttnOffsets {
    int64_t seqs, tables, rows;
    int n_rows;
    int max_keys;
  };
  AttnOffsets pack_attention(const AttentionSeq* seqs, int n_seqs, int block_size);
  int64_t pack(const int32_t* p, int64_t n);
  // Copies pack_ into buf (growing it) and returns its device base.
  int32_t* upload(Buffer& buf);
  // Copies pack_ to the next free stretch of spot_ (a ring at least four times the largest copy,
  // so the copies one op makes do not overlap; the first copy over 1/4 of it grows it, which
  // would strand an earlier copy of the same op, so ops upload at most a few small arrays).
  int32_t* upload_spot();
  AttentionBatch batch_at(const int32_t* base, const AttnOffsets& o) const;

  cudaStream_t stream_;
  std::vector<int32_t> pack_;
  Buffer step_, spot_;
  int64_t spot_used_ = 0;
  std::vector<Section> sections_;
  const AttentionSeq* step_seqs_ = nullptr;
  int step_n_seqs_ = 0;
  int step_block_size_ = 0;
  AttnOffsets step_attn_{};
  uint64_t generation_ = 0;
};

}  // namespace shardlm::cuda
