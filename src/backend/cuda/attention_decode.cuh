// Split-K decode attention (flash-decoding) over the paged BF16 or FP8 KV cache: one block per
// (sequence, KV head, key split) computes every query head of the KV head's group (GQA) from one
// read of its keys and values, and a small combine kernel merges the splits. Taken for batches of
// one query row per sequence (decode); attention.cu keeps prefill chunks and other head sizes.
// CPU reference: cpu::attention (backend/cpu/attention.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/attention.cuh"

namespace shardlm::cuda {

// How the decode kernel divides the keys. n_splits bounds the blocks per (sequence, KV head) and
// fixes the grid (so a CUDA graph can freeze it); each sequence then uses
// min(n_splits, ceil(keys / min_split_keys)) of them, decided on the device from the sequence's
// length at that step, so a graph captured at one context stays right, and balanced, at another.
// tensor_cores picks the kernel: attention_decode_mma.cu (head_dim 64/128; the plan's choice unless
// SHARDLM_CUDA_DECODE_MMA=0), whose splits are whole tiles of 64 keys, or the CUDA-core one.
struct DecodeSplits {
  int n_splits = 1;
  int min_split_keys = 64;
  bool tensor_cores = false;
};

// Whether the decode kernel takes this batch: one query row per sequence (batch.one_row_per_seq),
// head_dim 64, 128 or 256, at most 8 query heads per KV head.
bool decode_attention_applies(const AttentionBatch& batch, const AttentionParams& p);

// Whether the tensor-core kernel takes this shape: head_dim 64 or 128, at most 16 query heads per
// KV head (the rows of one m16 tile).
bool decode_mma_applies(int head_dim, int group);

// The split plan for n_seqs sequences: as many splits as keep one wave of blocks on the GPU
// (blocks resident per multiprocessor x multiprocessors) busy; 1 when the (sequence, KV head)
// pairs alone fill it. Depends on the batch's shape only, never on its lengths.
// allow_tensor_cores = false plans for the CUDA-core kernel (to compare).
DecodeSplits decode_attention_splits(int n_seqs, const AttentionParams& p,
                                     bool allow_tensor_cores = true);

// Scratch floats the split partial results need: [n_seqs][n_heads][n_splits][head_dim + 2].
size_t decode_attention_scratch_floats(int n_seqs, const AttentionParams& p, int n_splits);

// out[row][h] = softmax(q[row][h] . K^T * scale) V for the one row of each sequence, as
// attention(); q, out: [n_rows][n_heads * head_dim] fp32; cache_k / cache_v:
// [n_blocks * block_size][kv_dim] BF16 bits; scratch: decode_attention_scratch_floats(...) floats
// (unused with one split).
void decode_attention(const float* q, const uint16_t* cache_k, const uint16_t* cache_v,
                      const AttentionBatch& batch, const AttentionParams& p,
                      const DecodeSplits& splits, float* scratch, float* out, cudaStream_t stream);
// The same over an FP8 E4M3 cache (uint8_t codes, kv_element.cuh): 8-byte loads of 8 elements.
void decode_attention(const float* q, const uint8_t* cache_k, const uint8_t* cache_v,
                      const AttentionBatch& batch, const AttentionParams& p,
                      const DecodeSplits& splits, float* scratch, float* out, cudaStream_t stream);

}  // namespace shardlm::cuda
