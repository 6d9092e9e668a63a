// Prefill attention on tensor cores (flash-attention-2 style) over the paged BF16 KV cache: causal,
// grouped-query, with a cached prefix (chunked prefill) and an optional sliding window. Taken for
// batches in which some sequence has more than one query row; decode batches keep
// attention_decode.cuh. CPU reference: cpu::attention (backend/cpu/attention.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/backend.h"
#include "backend/cuda/attention.cuh"

namespace shardlm::cuda {

// Whether the tensor-core kernel takes this batch: head_dim 64 or 128, and some sequence has more
// than one query row (batch.max_seq_rows > 1).
bool prefill_attention_applies(const AttentionBatch& batch, const AttentionParams& p);

// Scratch floats the kernel needs (its list of query tiles): depends on n_rows and n_seqs only.
size_t prefill_attention_scratch_floats(const AttentionBatch& batch);

// out[row][h] = softmax(q[row][h] . K^T * scale) V over each row's visible keys, as attention();
// q, out: [n_rows][n_heads * head_dim] fp32 (q is rounded to BF16 for the tensor cores, and so are
// the softmax weights before they multiply V; the softmax itself is fp32); cache_k / cache_v:
// [n_blocks * block_size][kv_dim] BF16 bits; scratch: prefill_attention_scratch_floats(batch)
// floats of device memory. Rows of no sequence are left alone.
void prefill_attention(const float* q, const uint16_t* cache_k, const uint16_t* cache_v,
                       const AttentionBatch& batch, const AttentionParams& p, float* scratch,
                       float* out, cudaStream_t stream);
// The same over an FP8 E4M3 cache (uint8_t codes, kv_element.cuh): the tiles are widened to BF16
// on their way to shared memory (plain loads instead of cp.async).
void prefill_attention(const float* q, const uint8_t* cache_k, const uint8_t* cache_v,
                       const AttentionBatch& batch, const AttentionParams& p, float* scratch,
                       float* out, cudaStream_t stream);

}  // namespace shardlm::cuda
