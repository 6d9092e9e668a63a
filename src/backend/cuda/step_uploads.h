// The per-step integer arrays (token ids, positions, KV slots, logit rows, attention sequences and
// their block tables) copied to the GPU in one upload at begin_step, and handed back as the step's
// device arrays (StepArrays), which the ops receive. Each array sits at an offset that depends only
// on the batch's shape, so a captured CUDA graph reads the next step's values from the same
// addresses. Uploads are ordered on the backend's stream, so the buffer is only rewritten after the
// kernels that read it. The attention sequences are packed with the one-row (decode) sequences
// first.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/attention.cuh"

namespace shardlm::cuda {

class StepUploads {
 public:
  // SHARDLM_CUDA_MIXED_SPLIT=0: attention() gets no n_single_row_seqs (mixed batches stay whole).
  explicit StepUploads(cudaStream_t stream);
  ~StepUploads();
  StepUploads(const StepUploads&) = delete;
  StepUploads& operator=(const StepUploads&) = delete;

  // Uploads the arrays of s, the step numbered `step`, and returns their device copies.
  StepArrays begin(const StepIndices& s, uint64_t step);
  // Bumped whenever the device buffer moves (CUDA graphs captured before then are stale).
  uint64_t generation() const { return generation_; }
  // The most keys any row of the current step's attention sees.
  int step_max_keys() const { return attn_.max_keys; }
  // The device form of the current step's attention sequences.
  AttentionBatch attention() const;

 private:
  // Offsets (in int32 units) of the attention form's parts in pack_.
  struct AttnOffsets {
    int64_t seqs, tables, rows;
    int n_rows;
    int max_keys;
    int n_single;  // leading sequences of one query row
  };
  // Appends the attention form of seqs to pack_.
  AttnOffsets pack_attention(const AttentionSeq* seqs, int n_seqs, int block_size);
  // Appends p[0, n) to pack_; returns its offset.
  int64_t pack(const int32_t* p, int64_t n);
  // Copies pack_ to the device buffer (growing it).
  void upload();
  IndexArray device_array(int64_t offset, int64_t n, uint64_t step) const;

  cudaStream_t stream_;
  std::vector<int32_t> pack_;
  int32_t* dev_ = nullptr;
  int64_t capacity_ = 0;
  AttnOffsets attn_{};
  std::vector<int> order_;  // the packed order of the step's sequences
  bool split_mixed_ = true;
  uint64_t generation_ = 0;
};

}  // namespace shardlm::cuda
