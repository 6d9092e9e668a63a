// Prefill attention on tensor cores, flash-attention-2 style, over the paged BF16 KV cache.
//
// Grid: (query head, query tile). A tile is kRows consecutive query rows of one sequence; a small
// kernel lists the batch's tiles on the device (longest-reaching tile of each sequence first), so
// the host reads nothing of the step's lengths. A block of 4 warps holds its tile's queries as BF16
// in registers (16 rows per warp, mma A fragments) and walks the keys its rows can see in tiles of
// kKeys: each key/value tile is gathered from the paged cache into shared memory with cp.async
// (two stages, the next tile loading while this one is used), S = Q K^T and O += P V run as
// mma.sync m16n8k16 BF16 with fp32 accumulation, and the online softmax (log2 domain, fp32) keeps
// P in registers, where the S accumulators become the A fragments of P V. Shared memory rows are
// XOR-swizzled by 16-byte chunk so that ldmatrix reads are free of bank conflicts. Query heads of
// one KV head are neighbours in the grid, so their blocks share the key/value tiles through L2.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/attention_prefill.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/mma_tiles.cuh"

namespace shardlm::cuda {

namespace {

using mma::cp_async_16;
using mma::cp_async_commit;
using mma::cp_async_wait;
using mma::ldmatrix_x4;
using mma::ldmatrix_x4_trans;
using mma::mma_bf16;
using mma::pack_bf16;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = 16 * kWarps;  // query rows per block
constexpr int kKeys = 64;           // keys per shared-memory tile
constexpr int kListThreads = 1024;  // the tile-list kernel's block

int max_tiles(const AttentionBatch& b) {
  return (b.n_rows + kRows - 1) / kRows + b.n_seqs;
}

// Lists every (sequence, first row of the tile) of the batch in tiles[0, total), the rest of
// tiles[0, max_tiles) as (-1, 0). One block: each thread counts a run of sequences, a scan in
// shared memory gives each run its place.
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

struct PrefillArgs {
  const float* q;  // [n_rows][n_heads][head_dim]
  const void* k;   // [slots][n_kv_heads][head_dim]: BF16 bits or FP8 E4M3 codes (the kernel's T)
  const void* v;
  const DeviceAttnSeq* seqs;
  const int32_t* tables;
  const int2* tiles;  // [max_tiles] (sequence, first row in it) or (-1, 0)
  int tile_base;      // the launch's first tile (grids hold at most 65,535 tiles in y)
  int n_heads, group, kv_dim, block_size, window;
  float scale_log2;  // scale * log2(e)
  float* out;
};

// Shared-memory tiles of D BF16 per row, swizzled (mma_tiles.cuh).
template <int D>
struct Smem : mma::Swizzled<D> {
  using mma::Swizzled<D>::kChunks;
  // Two stages of keys and values; the queries pass through the second key stage on their way to
  // registers (kRows == kKeys), so a block takes 64 KB at head_dim 128 and three fit an SM.
  static constexpr size_t bytes() { return size_t{4 * kKeys} * kChunks * 16; }
};

// The block's query rows as BF16 into shared memory (rows past the tile's end as zeros).
template <int D>
__device__ void load_queries(const PrefillArgs& a, const float* q0, int n_rows, uint4* sq) {
  using S = Smem<D>;
  const int64_t row_stride = int64_t{a.n_heads} * D;
  for (int i = threadIdx.x; i < kRows * S::kChunks; i += kThreads) {
    const int r = i / S::kChunks, c = i % S::kChunks;
    uint4 packed = make_uint4(0, 0, 0, 0);
    if (r < n_rows) {
      const float4* src = reinterpret_cast<const float4*>(q0 + r * row_stride + c * 8);
      const float4 x = src[0], y = src[1];
      packed = make_uint4(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w), pack_bf16(y.x, y.y),
                          pack_bf16(y.z, y.w));
    }
    sq[S::at(r, c)] = packed;
  }
}

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

// Keys [key0, key0 + kKeys) of KV head kvh into one stage (zeros from key_hi on).
template <int D, typename T>
__device__ void load_kv_tile(const PrefillArgs& a, const int32_t* table, int kvh, int key0,
                             int key_hi, uint4* sk, uint4* sv) {
  using S = Smem<D>;
  for (int i = threadIdx.x; i < kKeys * S::kChunks; i += kThreads) {
    const int r = i / S::kChunks, c = i % S::kChunks;
    const int j = key0 + r;
    const bool live = j < key_hi;
    int64_t off = 0;
    if (live) {
      const int64_t slot = int64_t{table[j / a.block_size]} * a.block_size + j % a.block_size;
      off = slot * a.kv_dim + int64_t{kvh} * D + c * 8;
    }
    load_chunk(sk + S::at(r, c), sv + S::at(r, c), static_cast<const T*>(a.k),
               static_cast<const T*>(a.v), off, live);
  }
}

template <int D, typename T>
__global__ void __launch_bounds__(kThreads, 3) prefill_kernel(PrefillArgs a) {
  using S = Smem<D>;
  constexpr int kC = S::kChunks;
  const int2 tile = a.tiles[a.tile_base + static_cast<int>(blockIdx.y)];
  if (tile.x < 0) return;
  const DeviceAttnSeq seq = a.seqs[tile.x];
  const int h = static_cast<int>(blockIdx.x), kvh = h / a.group;
  const int n_rows = min(kRows, seq.n_tokens - tile.y);
  const int pos0 = seq.n_past + tile.y;  // position of the tile's first row
  const int key_hi = pos0 + n_rows;      // keys [key_lo, key_hi) are seen by some row
  const int key_lo = a.window > 0 ? max(0, pos0 - a.window + 1) : 0;
  const int32_t* table = a.tables + seq.table_offset;

  static_assert(kRows == kKeys, "the queries are staged in a key stage");
  extern __shared__ uint4 smem[];
  uint4* sk = smem;                 // [2][kKeys][kC]
  uint4* sv = sk + 2 * kKeys * kC;  // [2][kKeys][kC]
  uint4* sq = sk + kKeys * kC;      // [kRows][kC]: key stage 1 until the first prefetch
  const float* q0 = a.q + (int64_t{seq.first_row} + tile.y) * a.n_heads * D + int64_t{h} * D;
  load_queries<D>(a, q0, n_rows, sq);
  const int n_kv_tiles = (key_hi - key_lo + kKeys - 1) / kKeys;
  load_kv_tile<D, T>(a, table, kvh, key_lo, key_hi, sk, sv);
  cp_async_commit();
  __syncthreads();

  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, qd = lane & 3;  // the fragment row (and row + 8) and column pair
  uint32_t qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    ldmatrix_x4(qf[kk], sq + S::at(warp * 16 + (lane & 15), 2 * kk + (lane >> 4)));
  }
  __syncthreads();  // every warp has its queries before key stage 1 is loaded
  // This thread's two rows (clamped into the tile: rows past its end compute and are dropped).
  int pos[2], lo[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    pos[i] = pos0 + min(warp * 16 + g + 8 * i, n_rows - 1);
    lo[i] = a.window > 0 ? pos[i] - a.window + 1 : 0;
  }
  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  for (int t = 0; t < n_kv_tiles; ++t) {
    const int stage = t & 1, key0 = key_lo + t * kKeys;
    if (t + 1 < n_kv_tiles) {
      load_kv_tile<D, T>(a, table, kvh, key0 + kKeys, key_hi, sk + (stage ^ 1) * kKeys * kC,
                         sv + (stage ^ 1) * kKeys * kC);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const uint4* kb = sk + stage * kKeys * kC;
    const uint4* vb = sv + stage * kKeys * kC;

    float s[kKeys / 8][4] = {};  // S = Q K^T: 16 rows x kKeys per warp
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kKeys / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(
            b, kb + S::at(np * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
        mma_bf16(s[2 * np], qf[kk], b[0], b[1]);
        mma_bf16(s[2 * np + 1], qf[kk], b[2], b[3]);
      }
    }
    const bool mask = a.window > 0 || key0 + kKeys - 1 > pos0;
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e >> 1, j = key0 + nt * 8 + 2 * qd + (e & 1);
        float x = s[nt][e] * a.scale_log2;
        if (mask && (j > pos[i] || j < lo[i])) x = -INFINITY;
        s[nt][e] = x;
        mx[i] = fmaxf(mx[i], x);
      }
    }
    float corr[2], base[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      base[i] = mx[i] == -INFINITY ? 0.f : mx[i];  // a row with no key yet: weights stay 0
      corr[i] = exp2f(m[i] - base[i]);
      m[i] = mx[i];
      l[i] *= corr[i];
    }
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[nt][e] = exp2f(s[nt][e] - base[e >> 1]);
        l[e >> 1] += s[nt][e];
      }
    }
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      o[dt][0] *= corr[0];
      o[dt][1] *= corr[0];
      o[dt][2] *= corr[1];
      o[dt][3] *= corr[1];
    }
#pragma unroll
    for (int kt = 0; kt < kKeys / 16; ++kt) {  // O += P V, P straight from the S accumulators
      const uint32_t pa[4] = {pack_bf16(s[2 * kt][0], s[2 * kt][1]),
                              pack_bf16(s[2 * kt][2], s[2 * kt][3]),
                              pack_bf16(s[2 * kt + 1][0], s[2 * kt + 1][1]),
                              pack_bf16(s[2 * kt + 1][2], s[2 * kt + 1][3])};
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(
            b, vb + S::at(kt * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4)));
        mma_bf16(o[2 * dp], pa, b[0], b[1]);
        mma_bf16(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before it is loaded again
  }

  const int64_t row_stride = int64_t{a.n_heads} * D;
  float* out0 = a.out + (int64_t{seq.first_row} + tile.y) * row_stride + int64_t{h} * D;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    const int r = warp * 16 + g + 8 * i;
    if (r >= n_rows) continue;
    const float inv = 1.f / l[i];
    float* dst = out0 + r * row_stride + 2 * qd;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      *reinterpret_cast<float2*>(dst + dt * 8) =
          make_float2(o[dt][2 * i] * inv, o[dt][2 * i + 1] * inv);
    }
  }
}

template <int D, typename T>
void launch(PrefillArgs a, int n_heads, int n_tiles, cudaStream_t stream) {
  constexpr size_t kBytes = Smem<D>::bytes();
  // Set on every launch: the attribute is per device, and this is a host-side call of no cost
  // next to a prefill step.
  SHARDLM_CUDA_CHECK(cudaFuncSetAttribute(
      prefill_kernel<D, T>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kBytes)));
  constexpr int kMaxGridY = 65535;
  for (a.tile_base = 0; a.tile_base < n_tiles; a.tile_base += kMaxGridY) {
    const int tiles = std::min(kMaxGridY, n_tiles - a.tile_base);
    const dim3 grid(static_cast<unsigned>(n_heads), static_cast<unsigned>(tiles));
    prefill_kernel<D, T><<<grid, kThreads, kBytes, stream>>>(a);
  }
}

}  // namespace

bool prefill_attention_applies(const AttentionBatch& batch, const AttentionParams& p) {
  return batch.max_seq_rows > 1 && (p.head_dim == 64 || p.head_dim == 128) && p.n_kv_heads > 0 &&
         p.n_heads % p.n_kv_heads == 0;
}

size_t prefill_attention_scratch_floats(const AttentionBatch& batch) {
  return 2 * static_cast<size_t>(max_tiles(batch));  // one int2 per tile
}

namespace {

template <typename T>
void prefill_any(const float* q, const T* cache_k, const T* cache_v, const AttentionBatch& batch,
                 const AttentionParams& p, float* scratch, float* out, cudaStream_t stream) {
  if (batch.n_rows == 0 || batch.n_seqs == 0) return;
  const int n_tiles = max_tiles(batch);
  int2* tiles = reinterpret_cast<int2*>(scratch);
  tile_list_kernel<<<1, kListThreads, 0, stream>>>(batch.seqs, batch.n_seqs, tiles, n_tiles);
  SHARDLM_CUDA_CHECK_LAUNCH();
  PrefillArgs a{q,
                cache_k,
                cache_v,
                batch.seqs,
                batch.tables,
                tiles,
                0,
                p.n_heads,
                p.n_heads / p.n_kv_heads,
                p.n_kv_heads * p.head_dim,
                p.block_size,
                p.sliding_window,
                p.scale * 1.4426950408889634f,
                out};
  if (p.head_dim == 64) {
    launch<64, T>(a, p.n_heads, n_tiles, stream);
  } else {
    launch<128, T>(a, p.n_heads, n_tiles, stream);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
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
