// Latent attention's prefill in the expanded form (see mla_prefill.cuh): the gather of the
// sequences' cached rows, and the prefill kernel's source over the expanded keys and values.
#include <cuda_bf16.h>

#include "backend/cuda/attention_prefill_kernel.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/mla_prefill.cuh"
#include "backend/cuda/mma_tiles.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kNope = 128, kRope = 64, kV = 128, kQk = kNope + kRope;
constexpr int kGatherKeys = 32;  // keys per block of the gather
constexpr int kGatherThreads = 128;

// A sequence's keys in the window [key_begin, key_begin + window).
__device__ __forceinline__ int window_keys(const DeviceAttnSeq& s, int key_begin, int window) {
  return min(max(s.n_past + s.n_tokens - key_begin, 0), window);
}

__global__ void __launch_bounds__(kGatherThreads)
    gather_rows_kernel(const DeviceAttnSeq* seqs, const int32_t* tables, int block_size,
                       const uint16_t* cache, int row, int key_begin, int window,
                       int32_t* key_first, uint16_t* rows) {
  __shared__ int first;
  const int s = static_cast<int>(blockIdx.y);
  if (threadIdx.x == 0) first = 0;
  __syncthreads();
  int before = 0;  // the window's keys of the sequences before s
  for (int i = threadIdx.x; i < s; i += blockDim.x) before += window_keys(seqs[i], key_begin, window);
  if (before) atomicAdd(&first, before);
  __syncthreads();
  const DeviceAttnSeq seq = seqs[s];
  if (blockIdx.x == 0 && threadIdx.x == 0) key_first[s] = first - key_begin;
  const int n_keys = key_begin + window_keys(seq, key_begin, window);
  const int key0 = key_begin + static_cast<int>(blockIdx.x) * kGatherKeys;
  const int chunks = row / 8;  // 16-byte chunks a row
  const int32_t* table = tables + seq.table_offset;
  for (int i = threadIdx.x; i < kGatherKeys * chunks; i += blockDim.x) {
    const int j = key0 + i / chunks, c = i % chunks;
    if (j >= n_keys) break;
    reinterpret_cast<uint4*>(rows + (int64_t{first} + j - key_begin) * row)[c] =
        reinterpret_cast<const uint4*>(cache + paged_slot(table, j, block_size) * row)[c];
  }
}

// The expanded keys and values as the prefill kernel's source: a key of head h is
// [k_nope[h][key], the key's rotated rope part from its gathered row], its value v[h][key].
struct ExpandedSource {
  using SK = mma::Swizzled<kQk>;
  using SV = mma::Swizzled<kV>;
  const float* q;
  const float* q_rope;
  const uint16_t* rows;
  const int32_t* key_first;
  const uint16_t* k_nope;
  const uint16_t* v;
  int64_t keys;
  int n_heads, kv_lora, rope;

  __device__ void load_queries(int, const DeviceAttnSeq&, int row0, int h, int n_rows,
                               uint4* sq) const {
    constexpr int kNopeChunks = kNope / 8;
    for (int i = threadIdx.x; i < prefill::kRows * SK::kChunks; i += prefill::kThreads) {
      const int r = i / SK::kChunks, c = i % SK::kChunks;
      uint4 packed = make_uint4(0, 0, 0, 0);
      if (r < n_rows) {
        const int64_t qh = (int64_t{row0} + r) * n_heads + h;  // this (row, head)
        packed = mma::bf16x8_of(c < kNopeChunks ? q + qh * kQk + c * 8
                                                : q_rope + qh * kRope + (c - kNopeChunks) * 8);
      }
      sq[SK::at(r, c)] = packed;
    }
  }

  __device__ void load_kv(int s, const DeviceAttnSeq&, int h, int key0, int key_hi, uint4* sk,
                          uint4* sv) const {
    constexpr int kNopeChunks = kNope / 8;
    const int64_t first = key_first[s];
    const uint16_t* kh = k_nope + int64_t{h} * keys * kNope;
    const uint16_t* vh = v + int64_t{h} * keys * kV;
    for (int i = threadIdx.x; i < prefill::kKeys * SK::kChunks; i += prefill::kThreads) {
      const int r = i / SK::kChunks, c = i % SK::kChunks;
      const int j = key0 + r;
      const bool live = j < key_hi;
      const int64_t g = first + (live ? j : 0);
      const uint16_t* src = c < kNopeChunks
                                ? kh + g * kNope + c * 8
                                : rows + g * (kv_lora + rope) + kv_lora + (c - kNopeChunks) * 8;
      mma::cp_async_16(sk + SK::at(r, c), src, live);
    }
    for (int i = threadIdx.x; i < prefill::kKeys * SV::kChunks; i += prefill::kThreads) {
      const int r = i / SV::kChunks, c = i % SV::kChunks;
      const int j = key0 + r;
      const bool live = j < key_hi;
      mma::cp_async_16(sv + SV::at(r, c), vh + (first + (live ? j : 0)) * kV + c * 8, live);
    }
  }
};

// One (row, head) a block, a value element a thread.
__global__ void merge_pass_kernel(const int32_t* row_seq, int first_seq, int n_heads, int v_head,
                                  const float* part, const float* part_lse, float* out,
                                  float* lse) {
  const int64_t rh = blockIdx.x;
  if (row_seq[rh / n_heads] < first_seq) return;  // a decode row, or a row of no sequence
  const float a = lse[rh], b = part_lse[rh];
  const float M = fmaxf(a, b);
  if (M == -INFINITY) return;  // no key in either
  const float wa = a == -INFINITY ? 0.f : exp2f(a - M), wb = b == -INFINITY ? 0.f : exp2f(b - M);
  const float inv = 1.f / (wa + wb);
  for (int d = threadIdx.x; d < v_head; d += blockDim.x) {
    const int64_t i = rh * v_head + d;
    out[i] = (wa * out[i] + wb * part[i]) * inv;
  }
  __syncthreads();
  if (threadIdx.x == 0) lse[rh] = M + log2f(wa + wb);
}

}  // namespace

bool mla_prefill_shape_applies(int nope, int rope, int v_head, int kv_lora) {
  return nope == kNope && rope == kRope && v_head == kV && kv_lora > 0 && kv_lora % 8 == 0;
}

void mla_gather_rows(const DeviceAttnSeq* seqs, int n_seqs, const int32_t* tables, int block_size,
                     const uint16_t* cache, int row, int key_begin, int window, int max_keys,
                     int32_t* key_first, uint16_t* rows, cudaStream_t stream) {
  if (n_seqs <= 0 || max_keys <= 0) return;
  const dim3 grid(static_cast<unsigned>((max_keys + kGatherKeys - 1) / kGatherKeys),
                  static_cast<unsigned>(n_seqs));
  gather_rows_kernel<<<grid, kGatherThreads, 0, stream>>>(seqs, tables, block_size, cache, row,
                                                          key_begin, window, key_first, rows);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

size_t mla_prefill_tiles(int n_rows, int n_seqs) {
  return static_cast<size_t>(prefill::max_tiles(n_rows, n_seqs));
}

void mla_prefill_attention(const MlaPrefillArgs& a, int2* tile_scratch, cudaStream_t stream) {
  const prefill::Common common{a.seqs, nullptr, 0, a.n_heads, 0, a.scale * 1.4426950408889634f,
                               a.out,  a.key_begin, a.key_end, a.lse};
  const ExpandedSource src{a.q,      a.q_rope, a.rows,     a.key_first, a.k_nope,
                           a.v,      a.keys,   a.n_heads,  a.kv_lora,   a.rope};
  // Two blocks an SM: 80 KB of shared memory each (keys 192 wide, values 128).
  prefill::launch<kQk, kV, 2>(common, src, a.n_rows, a.n_seqs, tile_scratch, stream);
}

void mla_merge_pass(const AttentionBatch& batch, int first_seq, int n_heads, int v_head,
                    const float* part, const float* part_lse, float* out, float* lse,
                    cudaStream_t stream) {
  if (batch.n_rows <= 0) return;
  merge_pass_kernel<<<static_cast<unsigned>(int64_t{batch.n_rows} * n_heads), 128, 0, stream>>>(
      batch.row_seq, first_seq, n_heads, v_head, part, part_lse, out, lse);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
