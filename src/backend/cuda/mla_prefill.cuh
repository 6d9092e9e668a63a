// Latent attention's prefill in the expanded form (deepseek_v2/v3), as transformers computes it
// and as vLLM and SGLang run their prefill: every key the chunk sees is expanded from its cached
// latent row to per-head keys [W_kb latent, rope key] and values W_vb latent (two batched GEMMs
// in CudaMla), and the tensor-core prefill kernel (attention_prefill_kernel.cuh) runs over them
// with 192-wide keys and 128-wide values. The absorbed form (mla_attention.cuh) costs
// 2 (kv_lora + rope) + 2 kv_lora multiply-adds a (query, head, key) on CUDA cores; this form costs
// 2 (nope + rope) + 2 v_head on tensor cores, plus the expansion, once a key. CPU reference:
// cpu::mla_attention_reference (backend/cpu/mla.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/attention.cuh"

namespace shardlm::cuda {

// The head shape the kernel is built for (DeepSeek-V2, V2-Lite, V3): qk_nope_head_dim 128,
// qk_rope_head_dim 64, v_head_dim 128, and a kv_lora_rank of whole 16-byte chunks.
bool mla_prefill_shape_applies(int nope, int rope, int v_head, int kv_lora);

// The keys [key_begin, key_begin + window) of seqs[0, n_seqs) (of each sequence's n_past +
// n_tokens) one sequence after another: rows[key_first[s] + j] = the cached row ([kv_lora + rope]
// BF16) of key j of sequence s, read through its block table, key_first[s] + key_begin = the keys
// of the window the sequences before s have; max_keys: the most keys of one sequence in the
// window (host-side, for the grid).
void mla_gather_rows(const DeviceAttnSeq* seqs, int n_seqs, const int32_t* tables, int block_size,
                     const uint16_t* cache, int row, int key_begin, int window, int max_keys,
                     int32_t* key_first, uint16_t* rows, cudaStream_t stream);

struct MlaPrefillArgs {
  const DeviceAttnSeq* seqs;  // the prefill sequences (device), n_seqs of them
  int n_seqs;
  int n_rows;                 // rows of the whole step (bounds the tile list)
  int n_heads, kv_lora, rope;
  const float* q;             // [n_rows][n_heads][nope + rope] (the rope part not rotated)
  const float* q_rope;        // [n_rows][n_heads][rope]: the rotated rope parts (x YaRN's factor)
  const uint16_t* rows;       // mla_gather_rows' rows (their rope keys are already rotated)
  const int32_t* key_first;   // and key offsets
  const uint16_t* k_nope;     // [n_heads][keys][nope]: W_kb latent per head
  const uint16_t* v;          // [n_heads][keys][v_head]: W_vb latent per head
  int64_t keys;               // the gathered keys (the expansions' second dimension)
  float scale;
  float* out;                 // [n_rows][n_heads][v_head]: the prefill sequences' rows written
  // The key positions gathered, and where each (row, head)'s log2-sum-exp goes (with more than
  // one range: prefill::Common).
  int key_begin, key_end;
  float* lse;
};

// Scratch the kernel needs (its list of query tiles), in int2.
size_t mla_prefill_tiles(int n_rows, int n_seqs);

void mla_prefill_attention(const MlaPrefillArgs& a, int2* tile_scratch, cudaStream_t stream);

// Merges a later key range's pass into the earlier ones' (softmax over the union) for the rows of
// sequences from first_seq on (batch.row_seq): out = (out 2^(lse - M) + part 2^(part_lse - M)) /
// (2^(lse - M) + 2^(part_lse - M)), lse the union's; out, part: [n_rows][n_heads][v_head];
// lse, part_lse: [n_rows][n_heads].
void mla_merge_pass(const AttentionBatch& batch, int first_seq, int n_heads, int v_head,
                    const float* part, const float* part_lse, float* out, float* lse,
                    cudaStream_t stream);

}  // namespace shardlm::cuda
