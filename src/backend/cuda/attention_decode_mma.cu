// Split-K decode attention on tensor cores over the paged KV cache (BF16 or FP8 E4M3), with GQA.
//
// Grid: (sequence x KV head, split), as the CUDA-core kernel (attention_decode.cu), whose split
// plan, partial results and combine kernel it shares. The G query heads of one KV head are the rows
// of one m16 tile (zeros past G), so S = Q K^T and O += P V of a decode row run as mma.sync
// m16n8k16 with fp32 accumulators: the CUDA-core kernel spends ~500 instructions per 4 KB of keys
// on unpacking, shuffles and FMAs and cannot issue fast enough to read the cache at full bandwidth
// (nor gain from FP8's halved bytes); here a warp spends ~100 on 16 keys and values. A block of 4
// warps walks its split in tiles of 64 keys (16 per warp), gathered from the paged cache with
// cp.async into shared memory two stages deep; each warp keeps its own online softmax (log2
// domain, fp32), and the four merge in shared memory at the end. A BF16 cache is read by ldmatrix
// as it lies (rows XOR-swizzled); an FP8 cache is copied as codes and converted to FP16 (exact) in
// registers as the fragments are read: keys a 32-bit word of 4 head dims at a time (the queries in
// the same permuted order), values through ldmatrix.trans and a byte permute into even and odd
// head dims; FP8 runs on FP16 tensor cores with FP16 queries and weights. CPU reference:
// cpu::attention (backend/cpu/attention.cpp).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <type_traits>

#include "backend/cuda/attention_decode_args.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_smem.h"
#include "backend/cuda/e4m3_convert.cuh"
#include "backend/cuda/mma_tiles.cuh"
#include "backend/cuda/online_softmax.cuh"
#include "backend/cuda/pdl.cuh"
#include "core/env_flag.h"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kKeys = 16 * kWarps;  // keys per tile, 16 per warp
constexpr int kMaxGroup = 16;       // query heads per KV head: the rows of one m16 tile

// The tensor cores' input type per cache element type: BF16 as stored, FP8 converted to FP16.
template <typename T>
struct Compute;
template <>
struct Compute<uint16_t> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return mma::pack_bf16(lo, hi);
  }
  static __device__ __forceinline__ void product(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
    mma::mma_bf16(d, a, b0, b1);
  }
};
template <>
struct Compute<uint8_t> {
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    return mma::pack_f16(lo, hi);
  }
  static __device__ __forceinline__ void product(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
    mma::mma_f16(d, a, b0, b1);
  }
};

// Shared memory of a block at head_dim D, in 16-byte chunks: the copied tiles, [2 stages][K, V]
// [kKeys][D elements of T]; after the loop, the warps' partial results (floats) reuse it from the
// start.
template <int D, typename T>
struct Layout {
  static constexpr int kRawChunks = D * static_cast<int>(sizeof(T)) / 16;  // per key row
  static constexpr int kStage = kKeys * kRawChunks;  // chunks of one K (or V) tile
  static constexpr bool kFp8 = sizeof(T) == 1;
  static constexpr size_t kMerge = sizeof(float) * kWarps * kMaxGroup * (D + 2);
  static constexpr size_t bytes() {
    const size_t tiles = size_t{16} * 4 * kStage;
    return tiles > kMerge ? tiles : kMerge;
  }
};

// A key tile's 16-byte chunk index in the copied tile: BF16 swizzled for ldmatrix; FP8 swizzled
// by chunk, so that the 8 keys one 32-bit read (key_fragment) or one ldmatrix phase
// (value_fragments) covers fall on 8 different chunks.
template <int D, typename T>
__device__ __forceinline__ int raw_at(int row, int chunk) {
  using L = Layout<D, T>;
  if constexpr (L::kFp8) {
    return row * L::kRawChunks + (chunk ^ (row & (L::kRawChunks - 1)));
  } else {
    return mma::Swizzled<D>::at(row, chunk);
  }
}

// Keys [key0, key0 + kKeys) of the block's KV head into one stage (zeros from `end` on).
template <int D, typename T>
__device__ __forceinline__ void load_tile(const DecodeArgs& a, const int32_t* table, int64_t kv_dim,
                                          int64_t head_off, int key0, int end, uint4* dk,
                                          uint4* dv) {
  using L = Layout<D, T>;
  constexpr int kElems = 16 / static_cast<int>(sizeof(T));  // per chunk
  for (int i = static_cast<int>(threadIdx.x); i < L::kStage; i += kThreads) {
    const int r = i / L::kRawChunks, c = i % L::kRawChunks;
    const int j = key0 + r;
    const bool live = j < end;
    int64_t off = 0;
    if (live) {
      uint32_t page, in_page;
      div_mod(a.block, static_cast<uint32_t>(j), page, in_page);
      const int64_t slot = int64_t{__ldg(table + page)} * a.block.d + in_page;
      off = slot * kv_dim + head_off + c * kElems;
    }
    mma::cp_async_16(dk + raw_at<D, T>(r, c), static_cast<const T*>(a.k) + off, live);
    mma::cp_async_16(dv + raw_at<D, T>(r, c), static_cast<const T*>(a.v) + off, live);
  }
}

// O += P V over this warp's 16 keys of an FP8 tile: ldmatrix.trans reads 8 keys x 8 pairs of
// codes per matrix, so a thread holds (key 2qd, dims 2g, 2g + 1) and (key 2qd + 1, the same dims)
// in one word; the even dims' codes (bytes 0, 2) and the odd dims' (1, 3) become the B fragments
// of two n8 tiles: tile 2h + p of o holds dims 16h + 2n + p (out_dim).
template <int D, typename C>
__device__ __forceinline__ void value_products(const uint4* rv, int warp, int lane,
                                               const uint32_t (&pa)[4], float (&o)[D / 8][4]) {
#pragma unroll
  for (int h2 = 0; h2 < D / 32; ++h2) {
    uint32_t r[4];  // keys 0-7 and 8-15 of dims 32 h2 .. + 15, then of + 16 .. + 31
    mma::ldmatrix_x4_trans(r,
                           rv + raw_at<D, uint8_t>(warp * 16 + ((lane >> 3) & 1) * 8 + (lane & 7),
                                                   2 * h2 + (lane >> 4)));
#pragma unroll
    for (int half = 0; half < 2; ++half) {
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        const uint32_t sel = p ? 0x3131u : 0x2020u;
        const uint32_t b0 = e4m3x2_to_f16x2(__byte_perm(r[2 * half], 0, sel));
        const uint32_t b1 = e4m3x2_to_f16x2(__byte_perm(r[2 * half + 1], 0, sel));
        C::product(o[2 * (2 * h2 + half) + p], pa, b0, b1);
      }
    }
  }
}

// The head dim of column `col` (0-7) of n8 tile dt of O: in order for BF16; for FP8 the tile
// order of value_products.
template <bool kFp8>
__device__ __forceinline__ int out_dim(int dt, int col) {
  return kFp8 ? 16 * (dt >> 1) + 2 * col + (dt & 1) : 8 * dt + col;
}

// The B fragment of S = Q K^T for key `key` and head dims 16 kk + 4 qd .. + 3 of an FP8 tile, read
// as one 32-bit word of codes: dims +0, +1 as the fragment's k 2qd, 2qd + 1 and +2, +3 as k 2qd +
// 8,
// + 9 (the queries take the same order, load_queries<kPermuted>).
template <int D>
__device__ __forceinline__ void key_fragment(const uint4* rk, int key, int kk, int qd, uint32_t& b0,
                                             uint32_t& b1) {
  using L = Layout<D, uint8_t>;
  const auto* base = reinterpret_cast<const uint32_t*>(rk + raw_at<D, uint8_t>(key, kk));
  const uint32_t w = base[qd];
  b0 = e4m3x2_to_f16x2(w);
  b1 = e4m3x2_to_f16x2(w >> 16);
  static_assert(L::kRawChunks * 16 == D, "an FP8 chunk is 16 head dims");
}

// The query rows of the group as the A fragments of S = Q K^T: row g and g + 8 of columns
// 16 kk + 2 qd (+1) and + 8 (+9); rows past the group are zeros. kPermuted (FP8 keys,
// key_fragment): columns 16 kk + 4 qd (+1) and + 2 (+3) instead.
template <int D, typename T, bool kPermuted>
__device__ __forceinline__ void load_queries(const float* q0, int group, int g, int qd,
                                             uint32_t (&qf)[D / 16][4]) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = g + 8 * half;
      float2 x0 = make_float2(0.f, 0.f), x1 = x0;
      if (row < group) {
        const float* p = q0 + row * D + kk * 16 + (kPermuted ? 4 : 2) * qd;
        x0 = *reinterpret_cast<const float2*>(p);
        x1 = *reinterpret_cast<const float2*>(p + (kPermuted ? 2 : 8));
      }
      qf[kk][half] = Compute<T>::pack(x0.x, x0.y);
      qf[kk][2 + half] = Compute<T>::pack(x1.x, x1.y);
    }
  }
}

// A warp's walk over its 16 keys of each tile with the group's query heads as the rows of the m16
// tiles (G <= 16): S = Q K^T and O += P V, the scores' C fragments reused as P's A fragments.
// Per lane: rows g and g + 8; out_dim maps O's n8 tiles to head dims.
template <int D, typename T>
struct QueriesAsRows {
  using L = Layout<D, T>;
  using C = Compute<T>;
  uint32_t qf[D / 16][4];
  float o[D / 8][4];
  float m[2], l[2];

  __device__ __forceinline__ void start(const float* q0, int group, int g, int qd) {
    load_queries<D, T, L::kFp8>(q0, group, g, qd, qf);
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;
    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.f;
  }

  __device__ __forceinline__ void tile(const uint4* kb, const uint4* vb, int warp, int lane,
                                       int key0, int end, float scale_log2) {
    using S = mma::Swizzled<D>;
    const int g = lane >> 2, qd = lane & 3;
    float sc[2][4] = {};  // S: the group's rows x this warp's 16 keys
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      if constexpr (L::kFp8) {
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          uint32_t b0, b1;
          key_fragment<D>(kb, warp * 16 + nt * 8 + g, kk, qd, b0, b1);
          C::product(sc[nt], qf[kk], b0, b1);
        }
      } else {
        uint32_t b[4];
        mma::ldmatrix_x4(
            b, kb + S::at(warp * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
        C::product(sc[0], qf[kk], b[0], b[1]);
        C::product(sc[1], qf[kk], b[2], b[3]);
      }
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = key0 + warp * 16 + nt * 8 + 2 * qd + (e & 1);
        sc[nt][e] = j < end ? sc[nt][e] * scale_log2 : -INFINITY;
      }
    }
    float corr[2];
    online_softmax_step(sc, m, l, corr);
    if (corr[0] != 1.f || corr[1] != 1.f) online_softmax_rescale(o, corr);  // rare once settled
    const uint32_t pa[4] = {C::pack(sc[0][0], sc[0][1]), C::pack(sc[0][2], sc[0][3]),
                            C::pack(sc[1][0], sc[1][1]), C::pack(sc[1][2], sc[1][3])};
    if constexpr (L::kFp8) {
      value_products<D, C>(vb, warp, lane, pa, o);
    } else {
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];
        mma::ldmatrix_x4_trans(
            b, vb + S::at(warp * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4)));
        C::product(o[2 * dp], pa, b[0], b[1]);
        C::product(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
  }

  // The warp's (m, l) per head and its O rows into shared memory ([kMaxGroup] per warp).
  __device__ __forceinline__ void finish(float* sm_o, float* sm_ml, int warp, int group, int lane) {
    const int g = lane >> 2, qd = lane & 3;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      l[i] = quad_sum(l[i]);
      const int row = g + 8 * i;
      if (row >= group) continue;
      const int at = warp * kMaxGroup + row;
      if (qd == 0) {
        sm_ml[at * 2] = m[i];
        sm_ml[at * 2 + 1] = l[i];
      }
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        sm_o[at * D + out_dim<L::kFp8>(dt, 2 * qd)] = o[dt][2 * i];
        sm_o[at * D + out_dim<L::kFp8>(dt, 2 * qd + 1)] = o[dt][2 * i + 1];
      }
    }
  }
};

// Transposes the 8x8 b16 matrix a warp holds in the fragment layout (lane: row g, columns 2 qd,
// 2 qd + 1).
__device__ __forceinline__ uint32_t transposed(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}

// The same walk over an FP8 cache with the warp's 16 keys as the rows of the m16 tiles and the
// query heads as the 8 columns (G <= 8): S^T = K Q^T and O^T += V^T P^T, half the tensor-core
// work of QueriesAsRows where a group fills half a tile or less. The keys' A fragments are one
// 32-bit word of codes (4 head dims, the queries permuted to match as for key_fragment); P^T's B
// fragments are the scores' C fragments transposed (movmatrix); V^T's A fragments come from the
// same ldmatrix.trans words as value_products, the even dims' codes as rows g and the odd dims' as
// rows g + 8 of a 16-dim tile. Per lane: heads 2 qd, 2 qd + 1 (the columns).
template <int D>
struct KeysAsRows {
  uint32_t qb[D / 16][2];  // Q^T's B fragments: head g
  float o[D / 16][4];      // O^T: tile h row g = dim 16 h + 2 g, row g + 8 = dim 16 h + 2 g + 1
  float m[2], l[2];        // heads 2 qd, 2 qd + 1 (l: this lane's keys only, until finish)

  __device__ __forceinline__ void start(const float* q0, int group, int g, int qd) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
      if (g < group) x = *reinterpret_cast<const float4*>(q0 + g * D + kk * 16 + 4 * qd);
      qb[kk][0] = mma::pack_f16(x.x, x.y);
      qb[kk][1] = mma::pack_f16(x.z, x.w);
    }
#pragma unroll
    for (int h = 0; h < D / 16; ++h) o[h][0] = o[h][1] = o[h][2] = o[h][3] = 0.f;
    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.f;
  }

  __device__ __forceinline__ void tile(const uint4* kb, const uint4* vb, int warp, int lane,
                                       int key0, int end, float scale_log2) {
    const int g = lane >> 2, qd = lane & 3;
    float sc[4] = {};  // S^T: keys g, g + 8 x heads 2 qd, 2 qd + 1
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t w0 =
          reinterpret_cast<const uint32_t*>(kb + raw_at<D, uint8_t>(warp * 16 + g, kk))[qd];
      const uint32_t w1 =
          reinterpret_cast<const uint32_t*>(kb + raw_at<D, uint8_t>(warp * 16 + g + 8, kk))[qd];
      const uint32_t a[4] = {e4m3x2_to_f16x2(w0), e4m3x2_to_f16x2(w1), e4m3x2_to_f16x2(w0 >> 16),
                             e4m3x2_to_f16x2(w1 >> 16)};
      mma::mma_f16(sc, a, qb[kk][0], qb[kk][1]);
    }
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int e = 0; e < 4; ++e) {  // e & 1: the head, e >> 1: key g or g + 8
      const int j = key0 + warp * 16 + g + 8 * (e >> 1);
      const float x = j < end ? sc[e] * scale_log2 : -INFINITY;
      sc[e] = x;
      mx[e & 1] = fmaxf(mx[e & 1], x);
    }
    float corr[2], base[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int x = 4; x < 32; x <<= 1) mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], x));
      base[i] = mx[i] == -INFINITY ? 0.f : mx[i];  // no live key yet: weights stay 0
      corr[i] = exp2f(m[i] - base[i]);
      m[i] = mx[i];
      l[i] *= corr[i];
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      sc[e] = exp2f(sc[e] - base[e & 1]);
      l[e & 1] += sc[e];
    }
    if (corr[0] != 1.f || corr[1] != 1.f) {  // rare once the maxima have settled
#pragma unroll
      for (int h = 0; h < D / 16; ++h) {
        o[h][0] *= corr[0];
        o[h][1] *= corr[1];
        o[h][2] *= corr[0];
        o[h][3] *= corr[1];
      }
    }
    const uint32_t b0 = transposed(mma::pack_f16(sc[0], sc[1]));  // keys 2 qd, +1 of head g
    const uint32_t b1 = transposed(mma::pack_f16(sc[2], sc[3]));  // keys 2 qd + 8, + 9
#pragma unroll
    for (int h2 = 0; h2 < D / 32; ++h2) {
      uint32_t r[4];  // as in value_products
      mma::ldmatrix_x4_trans(r,
                             vb + raw_at<D, uint8_t>(warp * 16 + ((lane >> 3) & 1) * 8 + (lane & 7),
                                                     2 * h2 + (lane >> 4)));
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const uint32_t w0 = r[2 * half], w1 = r[2 * half + 1];
        const uint32_t a[4] = {e4m3x2_to_f16x2(__byte_perm(w0, 0, 0x2020)),
                               e4m3x2_to_f16x2(__byte_perm(w0, 0, 0x3131)),
                               e4m3x2_to_f16x2(__byte_perm(w1, 0, 0x2020)),
                               e4m3x2_to_f16x2(__byte_perm(w1, 0, 0x3131))};
        mma::mma_f16(o[2 * h2 + half], a, b0, b1);
      }
    }
  }

  __device__ __forceinline__ void finish(float* sm_o, float* sm_ml, int warp, int group, int lane) {
    const int g = lane >> 2, qd = lane & 3;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int x = 4; x < 32; x <<= 1) l[i] += __shfl_xor_sync(0xffffffffu, l[i], x);
      const int head = 2 * qd + i;
      if (head >= group) continue;
      const int at = warp * kMaxGroup + head;
      if (g == 0) {
        sm_ml[at * 2] = m[i];
        sm_ml[at * 2 + 1] = l[i];
      }
#pragma unroll
      for (int h = 0; h < D / 16; ++h) {
        sm_o[at * D + 16 * h + 2 * g] = o[h][i];
        sm_o[at * D + 16 * h + 2 * g + 1] = o[h][2 + i];
      }
    }
  }
};

template <int D, typename T, typename Walk>
__global__ void __launch_bounds__(kThreads, 3) mma_kernel(DecodeArgs a) {
  using L = Layout<D, T>;
  const int s = static_cast<int>(blockIdx.x) / a.n_kv_heads;
  const int kvh = static_cast<int>(blockIdx.x) % a.n_kv_heads;
  const int split = static_cast<int>(blockIdx.y);
  pdl_launch_dependents();
  pdl_wait();  // before any exit: this kernel never finishes ahead of the one before it
  const SeqKeys r = seq_keys(a, s);
  if (r.n <= 0 || split >= r.used) return;
  const int begin = r.lo + split * r.per, end = min(r.lo + r.n, begin + r.per);
  const int G = a.group, h0 = kvh * G;
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;

  extern __shared__ uint4 smem[];
  uint4* raw_k = smem;                   // [2][kStage]
  uint4* raw_v = raw_k + 2 * L::kStage;  // [2][kStage]
  const int32_t* table = a.tables + r.table_offset;
  const int64_t kv_dim = int64_t{a.n_kv_heads} * D, head_off = int64_t{kvh} * D;
  const int n_tiles = (end - begin + kKeys - 1) / kKeys;
  load_tile<D, T>(a, table, kv_dim, head_off, begin, end, raw_k, raw_v);
  mma::cp_async_commit();

  Walk w;
  w.start(a.q + (int64_t{r.row} * a.n_heads + h0) * D, G, lane >> 2, lane & 3);
  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1, key0 = begin + t * kKeys;
    if (t + 1 < n_tiles) {
      load_tile<D, T>(a, table, kv_dim, head_off, key0 + kKeys, end,
                      raw_k + (stage ^ 1) * L::kStage, raw_v + (stage ^ 1) * L::kStage);
      mma::cp_async_commit();
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();
    w.tile(raw_k + stage * L::kStage, raw_v + stage * L::kStage, warp, lane, key0, end,
           a.scale_log2);
    __syncthreads();  // every warp is done with this stage before it is loaded again
  }

  // Merge the warps: each (head, dim) output weighs warp w by 2^(m_w - M).
  float* sm_o = reinterpret_cast<float*>(smem);  // [kWarps][kMaxGroup][D]
  float* sm_ml = sm_o + kWarps * kMaxGroup * D;  // [kWarps][kMaxGroup][2]
  w.finish(sm_o, sm_ml, warp, G, lane);
  __syncthreads();
  const int64_t item = int64_t{s} * a.n_kv_heads + kvh;
  for (int idx = static_cast<int>(threadIdx.x); idx < G * D; idx += kThreads) {
    const int hg = idx / D, d = idx % D;
    float big = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float* ml = sm_ml + (w * kMaxGroup + hg) * 2;
      if (ml[1] > 0.f) big = fmaxf(big, ml[0]);
    }
    float sum_l = 0.f, sum_o = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float* ml = sm_ml + (w * kMaxGroup + hg) * 2;
      const float wt = ml[1] > 0.f ? exp2f(ml[0] - big) : 0.f;
      sum_l += ml[1] * wt;
      sum_o += sm_o[(w * kMaxGroup + hg) * D + d] * wt;
    }
    if (r.used == 1) {
      a.out[(int64_t{r.row} * a.n_heads + h0 + hg) * D + d] = sum_o / sum_l;
    } else {
      const int64_t part = (item * a.n_splits + split) * G + hg;
      a.part_acc[part * D + d] = sum_o;
      if (d == 0) {
        a.part_ml[part * 2] = big;
        a.part_ml[part * 2 + 1] = sum_l;
      }
    }
  }
}

// Lets the kernel take its (over 48 KB) shared memory on the current device; once per device.
template <int D, typename T, typename Walk>
void allow_shared_memory() {
  allow_shared_memory_once<mma_kernel<D, T, Walk>>(static_cast<int>(Layout<D, T>::bytes()));
}

template <int D, typename T, typename Walk>
void launch(const DecodeArgs& a, int n_seqs, cudaStream_t stream) {
  allow_shared_memory<D, T, Walk>();
  const dim3 grid(static_cast<unsigned>(n_seqs * a.n_kv_heads), static_cast<unsigned>(a.n_splits));
  launch_dependent(mma_kernel<D, T, Walk>, grid, kThreads, Layout<D, T>::bytes(), stream, a);
}

// An FP8 cache with a group of at most 8 query heads walks with the keys as the rows
// (SHARDLM_CUDA_DECODE_KEYS_AS_ROWS=0: the query heads, to compare).
template <int D>
void launch_fp8(const DecodeArgs& a, int n_seqs, cudaStream_t stream) {
  static const bool keys_as_rows = env_flag("SHARDLM_CUDA_DECODE_KEYS_AS_ROWS", true);
  if (keys_as_rows && a.group <= 8) {
    launch<D, uint8_t, KeysAsRows<D>>(a, n_seqs, stream);
  } else {
    launch<D, uint8_t, QueriesAsRows<D, uint8_t>>(a, n_seqs, stream);
  }
}

// Asked once per instance (never inside a graph capture: the first step of a shape runs op by op).
template <int D>
int resident_blocks() {
  using Walk = QueriesAsRows<D, uint16_t>;
  static const int blocks = [] {
    allow_shared_memory<D, uint16_t, Walk>();
    int n = 0;
    SHARDLM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &n, mma_kernel<D, uint16_t, Walk>, kThreads, Layout<D, uint16_t>::bytes()));
    return std::max(n, 1);
  }();
  return blocks;
}

}  // namespace

bool decode_mma_applies(int head_dim, int group) {
  return (head_dim == 64 || head_dim == 128) && group >= 1 && group <= kMaxGroup;
}

int decode_mma_key_tile() {
  return kKeys;
}

int decode_mma_resident_blocks(int head_dim) {
  return head_dim == 64 ? resident_blocks<64>() : resident_blocks<128>();
}

void decode_mma(const DecodeArgs& a, const uint16_t*, int head_dim, int n_seqs,
                cudaStream_t stream) {
  if (head_dim == 64) {
    launch<64, uint16_t, QueriesAsRows<64, uint16_t>>(a, n_seqs, stream);
  } else {
    launch<128, uint16_t, QueriesAsRows<128, uint16_t>>(a, n_seqs, stream);
  }
}

void decode_mma(const DecodeArgs& a, const uint8_t*, int head_dim, int n_seqs,
                cudaStream_t stream) {
  if (head_dim == 64) {
    launch_fp8<64>(a, n_seqs, stream);
  } else {
    launch_fp8<128>(a, n_seqs, stream);
  }
}

}  // namespace shardlm::cuda
