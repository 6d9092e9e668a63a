// Latent attention's decode on tensor cores (deepseek_v2/v3, the absorbed form): the query heads
// of one decode row share every cached row (one latent key/value head), so a block takes 16 heads
// as the 16 rows of mma.sync m16n8k16 tiles and reads each cached row once for all of them, where
// mla_attend (mla_attention.cuh) reads it once per head on CUDA cores. Each of the block's 4 warps
// computes the whole S = Q K^T of a 32-key tile (the tile's rows are K, and their first kv_lora
// values V, in one shared-memory stage) and its own quarter of O += P V, so the softmax needs no
// exchange between warps. Keys are split over blocks (n_splits per row, as attention_decode.cuh
// does: fixed per launch, each split's range from the row's length on the device, so a CUDA graph
// replays at any length), and a second kernel merges the splits. CPU reference:
// cpu::mla_attention (backend/cpu/mla.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/attention.cuh"

namespace shardlm::cuda {

// The shape the kernel is built for: kv_lora_rank 512, qk_rope_head_dim 64 (DeepSeek-V2,
// V2-Lite, V3).
bool mla_decode_shape_applies(int kv_lora, int rope);

// Splits of each row's keys for n_items rows of n_heads heads (enough blocks to fill n_sms SMs
// twice, at most 16).
int mla_decode_splits(int n_items, int n_heads, int n_sms);
// Scratch floats the splits' partial results need (0 for one split).
size_t mla_decode_scratch_floats(int n_items, int n_heads, int kv_lora, int n_splits);

// att[row][h] = softmax(qabs[row][h] . K^T * scale) V for the rows of the batch's leading n_items
// sequences (one row each: row = seqs[i].first_row), K the row's cached [latent, rope key] rows
// and V their latents; qabs: [rows][n_heads][kv_lora + rope] fp32; att: [rows][n_heads][kv_lora];
// cache: [slots][kv_lora + rope] BF16.
// scratch: mla_decode_scratch_floats(n_items, n_heads, 512, n_splits) floats.
void mla_decode_attention(const float* qabs, const uint16_t* cache, const AttentionBatch& batch,
                          int n_items, int n_heads, int block_size, float scale, int n_splits,
                          float* scratch, float* att, cudaStream_t stream);

}  // namespace shardlm::cuda
