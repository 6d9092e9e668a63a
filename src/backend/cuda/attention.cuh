// Paged causal grouped-query attention on the GPU, for decode and for prefill chunks with a cached
// prefix, with an optional sliding window. CPU reference: cpu::attention
// (backend/cpu/attention.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/backend.h"

namespace shardlm::cuda {

// A sequence of the batch as the kernel reads it (device memory): its query rows
// [first_row, first_row + n_tokens) sit at positions [n_past, n_past + n_tokens); its block table
// is tables[table_offset ...].
struct DeviceAttnSeq {
  int32_t first_row;
  int32_t n_tokens;
  int32_t n_past;
  int32_t table_offset;
};

struct AttentionBatch {
  const DeviceAttnSeq* seqs = nullptr;  // [n_seqs] device
  const int32_t* tables = nullptr;      // concatenated block tables, device
  const int32_t* row_seq = nullptr;     // [n_rows] device: the sequence of each query row, or -1
  int n_rows = 0;
  int max_keys = 0;  // the most keys any row sees (host-side, to choose the key splits)
  int n_seqs = 0;
  // Every sequence has exactly one query row (a decode batch): attention() then takes the split-K
  // decode kernel (attention_decode.cuh) where it applies. Set by the caller, from the host's
  // sequences; fixed by a CUDA graph's key (as many tokens as sequences).
  bool one_row_per_seq = false;
  // The most query rows of one sequence (host-side, set by the caller); over 1, attention() takes
  // the tensor-core prefill kernel (attention_prefill.cuh) where it applies. 0: not known (or the
  // caller wants the per-row kernel).
  int max_seq_rows = 0;
  // The leading sequences with one query row each (StepUploads packs a step's decode rows first).
  // In a batch that also holds prefill chunks, attention() runs these on the split-K decode kernel
  // and the rest on the tensor-core kernel (one 64-row tile per decode row, read once per query
  // head, would cost the chunk's kernel far more). 0: no split.
  int n_single_row_seqs = 0;
};

// Largest head_dim the kernel takes.
inline constexpr int kMaxAttentionHeadDim = 256;

// Key splits of the per-row kernel for a batch (1 when its rows and heads already fill the GPU),
// and the scratch floats its split partial results need.
int attention_splits(int n_rows, int n_heads, int max_keys);
size_t attention_scratch_floats(int n_rows, int n_heads, int head_dim, int max_keys);
// The scratch floats attention() needs for this batch, whichever kernel it takes.
size_t attention_scratch_floats(const AttentionBatch& batch, const AttentionParams& p);

// out[row][h] = softmax(q[row][h] . K^T * scale) V over the row's visible keys; q, out:
// [n_rows][n_heads * head_dim] fp32; cache_k / cache_v: [n_blocks * block_size][kv_dim] BF16
// bits (store_kv); scratch: attention_scratch_floats(batch, p) floats of device memory. Decode
// batches go to decode_attention (attention_decode.cuh), prefill batches to prefill_attention
// (attention_prefill.cuh), the rest to attention_by_rows.
void attention(const float* q, const uint16_t* cache_k, const uint16_t* cache_v,
               const AttentionBatch& batch, const AttentionParams& p, float* scratch, float* out,
               cudaStream_t stream);
// A mixed batch that attention() splits (n_single_row_seqs above); SHARDLM_CUDA_MIXED_SPLIT=0 at
// the backend keeps such batches whole on the tensor-core kernel, to compare.
bool mixed_attention_split_applies(const AttentionBatch& batch, const AttentionParams& p);
// The same over an FP8 E4M3 cache (--kv-cache-dtype fp8: uint8_t codes, scale 1,
// kv_element.cuh); every kernel below has this overload too.
void attention(const float* q, const uint8_t* cache_k, const uint8_t* cache_v,
               const AttentionBatch& batch, const AttentionParams& p, float* scratch, float* out,
               cudaStream_t stream);

// The per-row kernel: one block per (query head, row, key split), any batch; scratch:
// attention_scratch_floats(n_rows, n_heads, head_dim, max_keys) floats.
void attention_by_rows(const float* q, const uint16_t* cache_k, const uint16_t* cache_v,
                       const AttentionBatch& batch, const AttentionParams& p, float* scratch,
                       float* out, cudaStream_t stream);
void attention_by_rows(const float* q, const uint8_t* cache_k, const uint8_t* cache_v,
                       const AttentionBatch& batch, const AttentionParams& p, float* scratch,
                       float* out, cudaStream_t stream);

}  // namespace shardlm::cuda
