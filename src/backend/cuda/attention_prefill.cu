// Prefill attention on tensor cores over the paged BF16 (or FP8) KV cache: the kernel of
// attention_prefill_kernel.cuh with a source that gathers each key/value tile from the cache's
// blocks (cp.async for BF16). Query heads of one KV head are neighbours in the grid, so their
// blocks share the key/value tiles through L2.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/attention_prefill.cuh"
#include "backend/cuda/attention_prefill_kernel.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/mma_tiles.cuh"

namespace shardlm::cuda {

namespace prefill {

namespace {

constexpr int kListThreads = 1024;  // the tile-list kernel's block

// One block: each thread counts a run of sequences, a scan in shared memory gives each run its
// place.
__global__ void __launch_bounds__(kListThreads)
    tile_list_kernel(const DeviceAttnSeq* seqs, int n_seqs, int2* tiles, int n_max) {
  __shared__ int sums[kListThreads];
  const int per = (n_seqs + kListThreads - 1) / kListThreads;
  const int s0 = min(n_seqs, static_cast<int>(threadIdx.x) * per), s1 = min(n_seqs, s0 + per);
  int count = 0;
  for (int s = s0; s < s1; ++s) count += (seqs[s].n_tokens + kRows - 1) / kRows;
  sums[threadIdx.x] = count;
  __syncthreads();
  for (int off = 1; off < kListThreads; off <<= 1) {  // inclusive scan
    const int add = static_cast<int>(threadIdx.x) >= off ? sums[threadIdx.x - off] : 0;
    __syncthreads();
    sums[threadIdx.x] += add;
    __syncthreads();
  }
  int at = sums[threadIdx.x] - count;
  for (int s = s0; s < s1; ++s) {
    const int n = (seqs[s].n_tokens + kRows - 1) / kRows;
    for (int t = n - 1; t >= 0; --t) tiles[at++] = make_int2(s, t * kRows);  // most keys first
  }
  for (int i = sums[kListThreads - 1] + threadIdx.x; i < n_max; i += kListThreads) {
    tiles[i] = make_int2(-1, 0);
  }
}

}  // namespace

void list_tiles(const DeviceAttnSeq* seqs, int n_seqs, int2* tiles, int n_max,
                cudaStream_t stream) {
  tile_list_kernel<<<1, kListThreads, 0, stream>>>(seqs, n_seqs, tiles, n_max);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace prefill

namespace {

using mma::cp_async_16;
using mma::pack_bf16;
using prefill::kKeys;
using prefill::kRows;
using prefill::kThreads;

// 16 bytes of the tile (8 elements) from a BF16 cache: asynchronous, as they are.
__device__ __forceinline__ void load_chunk(uint4* sk, uint4* sv, const uint16_t* k,
                                           const uint16_t* v, int64_t off, bool live) {
  cp_async_16(sk, k + off, live);
  cp_async_16(sv, v + off, live);
}

// Eight E4M3 codes (8 bytes) as eight BF16 (exact: E4M3 values fit BF16).
__device__ __forceinline__ uint4 e4m3x8_to_bf16x8(uint2 w) {
  float f[8];
  e4m3x8_to_float(w.x, w.y, f);
  return make_uint4(pack_bf16(f[0], f[1]), pack_bf16(f[2], f[3]), pack_bf16(f[4], f[5]),
                    pack_bf16(f[6], f[7]));
}

// The same from an FP8 cache: 8 bytes each, widened to BF16 in registers and stored (synchronous;
// the loop's barriers order it like the asynchronous copies).
__device__ __forceinline__ void load_chunk(uint4* sk, uint4* sv, const uint8_t* k, const uint8_t* v,
                                           int64_t off, bool live) {
  uint4 kk = make_uint4(0, 0, 0, 0), vv = kk;
  if (live) {
    kk = e4m3x8_to_bf16x8(*reinterpret_cast<const uint2*>(k + off));
    vv = e4m3x8_to_bf16x8(*reinterpret_cast<const uint2*>(v + off));
  }
  *sk = kk;
  *sv = vv;
}

// The paged GQA cache as the kernel's source: queries [n_rows][n_heads][D] fp32, keys and values
// [slots][n_kv_heads][D] (T: BF16 bits or FP8 E4M3 codes) behind the sequences' block tables.
template <int D, typename T>
struct PagedSource {
  using S = mma::Swizzled<D>;
  const float* q;
  const T* k;
  const T* v;
  const int32_t* tables;
  int n_heads, group, kv_dim, block_size;

  __device__ void load_queries(int, const DeviceAttnSeq&, int row0, int h, int n_rows,
                               uint4* sq) const {
    const int64_t row_stride = int64_t{n_heads} * D;
    const float* q0 = q + int64_t{row0} * row_stride + int64_t{h} * D;
    for (int i = threadIdx.x; i < kRows * S::kChunks; i += kThreads) {
      const int r = i / S::kChunks, c = i % S::kChunks;
      sq[S::at(r, c)] =
          r < n_rows ? mma::bf16x8_of(q0 + r * row_stride + c * 8) : make_uint4(0, 0, 0, 0);
    }
  }

  // Keys [key0, key0 + kKeys) of the query head's KV head into one stage (zeros from key_hi on).
  __device__ void load_kv(int, const DeviceAttnSeq& seq, int h, int key0, int key_hi, uint4* sk,
                          uint4* sv) const {
    const int32_t* table = tables + seq.table_offset;
    const int kvh = h / group;
    for (int i = threadIdx.x; i < kKeys * S::kChunks; i += kThreads) {
      const int r = i / S::kChunks, c = i % S::kChunks;
      const int j = key0 + r;
      const bool live = j < key_hi;
      int64_t off = 0;
      if (live) {
        off = paged_slot(table, j, block_size) * kv_dim + int64_t{kvh} * D + c * 8;
      }
      load_chunk(sk + S::at(r, c), sv + S::at(r, c), k, v, off, live);
    }
  }
};

}  // namespace

bool prefill_attention_applies(const AttentionBatch& batch, const AttentionParams& p) {
  return batch.max_seq_rows > 1 && (p.head_dim == 64 || p.head_dim == 128) && p.n_kv_heads > 0 &&
         p.n_heads % p.n_kv_heads == 0;
}

size_t prefill_attention_scratch_floats(const AttentionBatch& batch) {
  return 2 * static_cast<size_t>(prefill::max_tiles(batch.n_rows, batch.n_seqs));  // int2 each
}

namespace {

template <int D, typename T>
void prefill_d(const prefill::Common& a, const PagedSource<D, T>& src, const AttentionBatch& batch,
               float* scratch, cudaStream_t stream) {
  // Three blocks an SM (64 KB of shared memory each at D = 128).
  prefill::launch<D, D, 3>(a, src, batch.n_rows, batch.n_seqs, reinterpret_cast<int2*>(scratch),
                           stream);
}

template <typename T>
void prefill_any(const float* q, const T* cache_k, const T* cache_v, const AttentionBatch& batch,
                 const AttentionParams& p, float* scratch, float* out, cudaStream_t stream) {
  const prefill::Common a{batch.seqs, nullptr, 0, p.n_heads, p.sliding_window,
                          p.scale * 1.4426950408889634f, out};
  const int group = p.n_heads / p.n_kv_heads, kv_dim = p.n_kv_heads * p.head_dim;
  if (p.head_dim == 64) {
    prefill_d(a, PagedSource<64, T>{q, cache_k, cache_v, batch.tables, p.n_heads, group, kv_dim,
                                    p.block_size},
              batch, scratch, stream);
  } else {
    prefill_d(a, PagedSource<128, T>{q, cache_k, cache_v, batch.tables, p.n_heads, group, kv_dim,
                                     p.block_size},
              batch, scratch, stream);
  }
}

}  // namespace

void prefill_attention(const float* q, const uint16_t* cache_k, const uint16_t* cache_v,
                       const AttentionBatch& batch, const AttentionParams& p, float* scratch,
                       float* out, cudaStream_t stream) {
  prefill_any(q, cache_k, cache_v, batch, p, scratch, out, stream);
}

void prefill_attention(const float* q, const uint8_t* cache_k, const uint8_t* cache_v,
                       const AttentionBatch& batch, const AttentionParams& p, float* scratch,
                       float* out, cudaStream_t stream) {
  prefill_any(q, cache_k, cache_v, batch, p, scratch, out, stream);
}

}  // namespace shardlm::cuda
