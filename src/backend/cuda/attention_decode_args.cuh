// What the two split-K decode attention kernels share (attention_decode.cu: CUDA cores;
// attention_decode_mma.cu: tensor cores): the launch's arguments, the per-sequence split of the
// keys decided on the device, the block-size division, and the tensor-core kernel's entry points.
// Internal to backend/cuda's decode attention.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_decode.cuh"

namespace shardlm::cuda {

// n / d and n % d for 0 <= n < 2^31 with a multiply and a shift (d fixed per launch: the block
// size, which need not be a power of two).
struct FastDiv {
  uint32_t d, mul, shift;
};

inline FastDiv make_fast_div(uint32_t d) {
  uint32_t shift = 0;
  while ((uint64_t{1} << shift) < d) ++shift;
  const uint64_t mul = ((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1;
  return {d, static_cast<uint32_t>(mul), shift};
}

__device__ __forceinline__ void div_mod(const FastDiv& f, uint32_t n, uint32_t& q, uint32_t& r) {
  q = (__umulhi(n, f.mul) + n) >> f.shift;
  r = n - q * f.d;
}

struct DecodeArgs {
  const float* q;  // [n_rows][n_heads][head_dim]
  const void* k;   // [slots][n_kv_heads][head_dim] BF16 bits or FP8 E4M3 codes (the kernel's T)
  const void* v;
  const DeviceAttnSeq* seqs;
  const int32_t* tables;
  int n_heads, n_kv_heads, group, sliding_window;
  float scale_log2;  // scale * log2(e)
  FastDiv block;     // block_size
  int n_splits, min_split_keys;
  int split_align;  // a split's keys are a multiple of this (the tensor-core kernel's key tile)
  float* out;
  float* part_acc;  // [n_seqs][n_kv_heads][n_splits][group][head_dim]
  float* part_ml;   // [n_seqs][n_kv_heads][n_splits][group][2]: m, l
};

// A sequence's keys [lo, lo + n), its query row and its split: `used` splits of `per` keys.
struct SeqKeys {
  int lo, n, per, used, row, table_offset;
};

__device__ __forceinline__ SeqKeys seq_keys(const DecodeArgs& a, int s) {
  const DeviceAttnSeq seq = a.seqs[s];
  const int pos = seq.n_past + seq.n_tokens - 1;  // the one query row's position
  const int lo = a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0;
  const int n = pos + 1 - lo;
  int used = max(1, min(a.n_splits, (n + a.min_split_keys - 1) / a.min_split_keys));
  int per = max(1, (n + used - 1) / used);
  per = (per + a.split_align - 1) / a.split_align * a.split_align;
  used = max(1, (n + per - 1) / per);  // no empty split
  return {lo, n, per, used, seq.first_row, seq.table_offset};
}

// The tensor-core kernel (attention_decode_mma.cu; decode_mma_applies in attention_decode.cuh):
// keys split in multiples of decode_mma_key_tile().
int decode_mma_key_tile();
// Blocks of it resident on one multiprocessor of the current device at this head_dim.
int decode_mma_resident_blocks(int head_dim);
// One launch over n_seqs sequences (a.split_align == decode_mma_key_tile()). The BF16 cache runs
// on BF16 tensor cores; the FP8 one is widened to FP16 in shared memory and runs on FP16 ones.
void decode_mma(const DecodeArgs& a, const uint16_t* cache_tag, int head_dim, int n_seqs,
                cudaStream_t stream);
void decode_mma(const DecodeArgs& a, const uint8_t* cache_tag, int head_dim, int n_seqs,
                cudaStream_t stream);

}  // namespace shardlm::cuda
