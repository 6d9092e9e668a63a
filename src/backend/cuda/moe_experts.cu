// The routed experts' kernels (see moe_experts.cuh): the device-side grouping into tiles, the
// tiled BF16 GEMV-style expert projections (one warp per kRowsPerWarp output rows, up to
// kMoeTileTokens pairs per warp), the slot-ordered combine and the shared expert's gated add.
#include <cuda_bf16.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/expert_rows.cuh"
#include "backend/cuda/moe_experts.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/reduce.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 8;        // warps per block
constexpr int kRowsPerWarp = 4;  // output rows per warp: each x load serves this many

// The exclusive prefix sums over the block's threads of two counts (thread order), and their
// totals; blockDim.x a multiple of 32, at most 1024.
__device__ __forceinline__ void block_exclusive_scan2(int a, int b, int& before_a, int& before_b,
                                                      int& total_a, int& total_b) {
  __shared__ int warp_a[32], warp_b[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int ia = a, ib = b;  // inclusive within the warp
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const int ua = __shfl_up_sync(0xffffffffu, ia, o), ub = __shfl_up_sync(0xffffffffu, ib, o);
    if (lane >= o) {
      ia += ua;
      ib += ub;
    }
  }
  if (lane == 31) {
    warp_a[warp] = ia;
    warp_b[warp] = ib;
  }
  __syncthreads();
  if (warp == 0) {  // the warps' totals, scanned
    int wa = lane < warps ? warp_a[lane] : 0, wb = lane < warps ? warp_b[lane] : 0;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int ua = __shfl_up_sync(0xffffffffu, wa, o), ub = __shfl_up_sync(0xffffffffu, wb, o);
      if (lane >= o) {
        wa += ua;
        wb += ub;
      }
    }
    warp_a[lane] = wa;
    warp_b[lane] = wb;
  }
  __syncthreads();
  before_a = ia - a + (warp > 0 ? warp_a[warp - 1] : 0);
  before_b = ib - b + (warp > 0 ? warp_b[warp - 1] : 0);
  total_a = warp_a[warps - 1];
  total_b = warp_b[warps - 1];
}

// One block: count each local expert's pairs, lay the experts' pairs out one after another in
// tiles of up to kMoeTileTokens (each thread a run of consecutive experts, placed by a prefix sum
// of the pairs and tiles before it), then place each pair (the order within an expert is free: a
// pair's sums do not depend on its tile).
__global__ void align_kernel(const int32_t* ids, int64_t n_pairs, int first, int n_local,
                             int tile_tokens, int32_t* sorted, MoeTile* tiles, int32_t* n_tiles,
                             unsigned long long* expert_rows) {
  pdl_launch_dependents();
  pdl_wait();
  extern __shared__ int32_t counts[];  // [n_local] counts, then [n_local] cursors
  int32_t* cursor = counts + n_local;
  for (int e = threadIdx.x; e < n_local; e += blockDim.x) counts[e] = 0;
  __syncthreads();
  for (int64_t p = threadIdx.x; p < n_pairs; p += blockDim.x) {
    const int e = ids[p] - first;
    if (e >= 0 && e < n_local) atomicAdd(&counts[e], 1);
  }
  __syncthreads();
  const int per = (n_local + static_cast<int>(blockDim.x) - 1) / static_cast<int>(blockDim.x);
  const int e0 = min(n_local, static_cast<int>(threadIdx.x) * per), e1 = min(n_local, e0 + per);
  int pairs = 0, n_tile = 0;
  for (int e = e0; e < e1; ++e) {
    pairs += counts[e];
    n_tile += (counts[e] + tile_tokens - 1) / tile_tokens;
  }
  int start = 0, nt = 0, total_pairs = 0, total_tiles = 0;
  block_exclusive_scan2(pairs, n_tile, start, nt, total_pairs, total_tiles);
  for (int e = e0; e < e1; ++e) {
    cursor[e] = start;
    for (int32_t c = 0; c < counts[e]; c += tile_tokens) {
      tiles[nt++] = MoeTile{e, start + c, min(tile_tokens, counts[e] - c)};
    }
    start += counts[e];
  }
  if (threadIdx.x == 0) {
    *n_tiles = total_tiles;
    if (expert_rows) *expert_rows += static_cast<unsigned long long>(total_pairs);
  }
  __syncthreads();
  for (int64_t p = threadIdx.x; p < n_pairs; p += blockDim.x) {
    const int e = ids[p] - first;
    if (e >= 0 && e < n_local) sorted[atomicAdd(&cursor[e], 1)] = static_cast<int32_t>(p);
  }
}

__device__ __forceinline__ void unpack8(const uint4& v, float* f) {
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(words[i] << 16);
    f[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ float bf16_at(const uint16_t* w, int64_t i) {
  return __uint_as_float(static_cast<uint32_t>(w[i]) << 16);
}

// The dot products of 8 weights (one 16-byte load) with columns c .. c + 7 of x.
__device__ __forceinline__ float dot8(const uint4& wv, const float* x) {
  float f[8];
  unpack8(wv, f);
  const float4 a = *reinterpret_cast<const float4*>(x);
  const float4 b = *reinterpret_cast<const float4*>(x + 4);
  return f[0] * a.x + f[1] * a.y + f[2] * a.z + f[3] * a.w + f[4] * b.x + f[5] * b.y + f[6] * b.z +
         f[7] * b.w;
}

// f(u, m, r) for every column block u < kChunks, matrix m < kMats and row r < kRows, unrolled:
// the loads a lane of the tile kernels issues before it uses any.
template <int kChunks, int kMats, int kRows, class F>
__device__ __forceinline__ void each_load(F&& f) {
#pragma unroll
  for (int u = 0; u < kChunks; ++u) {
#pragma unroll
    for (int m = 0; m < kMats; ++m) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) f(u, m, r);
    }
  }
}

// acc[m][r][i] += w_m[r] . x_i over kMats BF16 matrices (gate and up, or down) of kRows rows each
// (k apart) for the tile's pairs i < count (<= kCount). With k % 8 == 0 each lane takes 8 columns
// per 256, its loads of kChunks such column blocks of every row issued before any is used; the
// sums run block by block, in the same order whatever kChunks, kCount and the other pairs. Rows
// at or past `rows` are skipped.
template <int kMats, int kRows, int kCount>
__device__ __forceinline__ void rows_dots(const uint16_t* const (&w)[kMats], int rows,
                                          const float* const (&xr)[kCount], int count, int64_t k,
                                          int lane, float (&acc)[kMats][kRows][kCount]) {
  constexpr int kChunks = 4 / kMats;
  if (k % 8 == 0) {
    for (int64_t i0 = int64_t{lane} * 8; i0 < k; i0 += 256 * kChunks) {
      uint4 raw[kChunks][kMats][kRows];
      each_load<kChunks, kMats, kRows>([&](int u, int m, int r) {
        const int64_t c = i0 + u * 256;
        raw[u][m][r] = r < rows && c < k ? __ldg(reinterpret_cast<const uint4*>(w[m] + r * k + c))
                                         : make_uint4(0u, 0u, 0u, 0u);
      });
#pragma unroll
      for (int u = 0; u < kChunks; ++u) {
        const int64_t c = i0 + u * 256;
        if (c >= k) break;
#pragma unroll
        for (int i = 0; i < kCount; ++i) {
          if (i >= count) break;
#pragma unroll
          for (int m = 0; m < kMats; ++m) {
#pragma unroll
            for (int r = 0; r < kRows; ++r) acc[m][r][i] += dot8(raw[u][m][r], xr[i] + c);
          }
        }
      }
    }
    return;
  }
  for (int64_t i0 = lane; i0 < k; i0 += 32) {
#pragma unroll
    for (int m = 0; m < kMats; ++m) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r >= rows) break;
        const float f = bf16_at(w[m] + r * k, i0);
#pragma unroll
        for (int i = 0; i < kCount; ++i) {
          if (i < count) acc[m][r][i] += f * xr[i][i0];
        }
      }
    }
  }
}

// The dot product of 16 code values (e4m3x16_floats) with columns c .. c + 15 of x.
__device__ __forceinline__ float dot16(const float (&w)[16], const float* x) {
  float sum = 0.f;
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const float4 a = *reinterpret_cast<const float4*>(x + 4 * q);
    sum += w[4 * q] * a.x + w[4 * q + 1] * a.y + w[4 * q + 2] * a.z + w[4 * q + 3] * a.w;
  }
  return sum;
}

// rows_dots for F8_E4M3_G128 matrices (expert_rows.cuh; codes q[m] and scales s[m] from the
// warp's first row, k % 128 == 0): each lane takes 16 columns per 512 (one 16-byte load of codes,
// inside one scale group), kChunks such blocks of every row in flight; a block's 16 products
// e4m3(code) x x are summed, then scaled by their group's scale into acc. The same order whatever
// kCount and the other pairs.
template <int kMats, int kRows, int kCount>
__device__ __forceinline__ void rows_dots_fp8(const uint8_t* const (&q)[kMats],
                                              const float* const (&s)[kMats], int rows,
                                              const float* const (&xr)[kCount], int count,
                                              int64_t k, int lane,
                                              float (&acc)[kMats][kRows][kCount]) {
  constexpr int kChunks = 4 / kMats;
  const int64_t groups = k / kFp8GroupCols;
  for (int64_t i0 = int64_t{lane} * 16; i0 < k; i0 += 512 * kChunks) {
    uint4 raw[kChunks][kMats][kRows];
    float scale[kChunks][kMats][kRows];
    each_load<kChunks, kMats, kRows>([&](int u, int m, int r) {
      const int64_t c = i0 + u * 512;
      const bool in = r < rows && c < k;
      raw[u][m][r] =
          in ? __ldg(reinterpret_cast<const uint4*>(q[m] + r * k + c)) : make_uint4(0u, 0u, 0u, 0u);
      scale[u][m][r] = in ? __ldg(s[m] + r * groups + c / kFp8GroupCols) : 0.f;
    });
#pragma unroll
    for (int u = 0; u < kChunks; ++u) {
      const int64_t c = i0 + u * 512;
      if (c >= k) break;
#pragma unroll
      for (int m = 0; m < kMats; ++m) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          float w[16];
          e4m3x16_floats(raw[u][m][r], w);
#pragma unroll
          for (int i = 0; i < kCount; ++i) {
            if (i < count) acc[m][r][i] += dot16(w, xr[i] + c) * scale[u][m][r];
          }
        }
      }
    }
  }
}

// One warp per kRowsPerWarp output rows j of the tile's expert, for each of the tile's pairs:
// y[p][j] = silu(x . gate_j) * (x . up_j) (kGateUp) or x . down_j; x row of pair p:
// x[p / x_div]. The pairs go kCount at a time (a tile holds at most as many pairs as the step has
// tokens). A pair's sum for a row runs in the same order whatever the other rows and pairs.
// kFp8: the matrices are F8_E4M3_G128 (t.gate_up_fp8 or t.down_fp8).
template <bool kGateUp, bool kFp8, int kCount>
__global__ void __launch_bounds__(kWarps * 32)
    tile_kernel(MoeExpertTables t, const MoeTile* tiles, const int32_t* n_tiles,
                const int32_t* sorted, const float* x, int x_div, int64_t k, int64_t n_rows,
                float* y) {
  constexpr int R = kRowsPerWarp, M = kGateUp ? 2 : 1;
  pdl_launch_dependents();
  pdl_wait();
  if (static_cast<int32_t>(blockIdx.y) >= *n_tiles) return;
  const MoeTile tile = tiles[blockIdx.y];
  const int lane = threadIdx.x & 31;
  const int64_t j0 = (int64_t{blockIdx.x} * kWarps + (threadIdx.x >> 5)) * R;
  if (j0 >= n_rows) return;
  const int rows = n_rows - j0 < R ? static_cast<int>(n_rows - j0) : R;
  const uint8_t* base[M];  // the matrices: BF16 rows, or FP8 codes then scales
  base[0] = (kGateUp ? t.gate : t.down)[tile.expert];
  if constexpr (kGateUp) base[1] = t.up[tile.expert];
  // From row j0: BF16 rows w, or FP8 codes q and scales s.
  const uint16_t* w[M];
  const uint8_t* q[M];
  const float* s[M];
#pragma unroll
  for (int m = 0; m < M; ++m) {
    if constexpr (kFp8) {
      q[m] = base[m] + j0 * k;
      s[m] = fp8_expert_scales(base[m], n_rows, k) + j0 * (k / kFp8GroupCols);
    } else {
      w[m] = reinterpret_cast<const uint16_t*>(base[m]) + j0 * k;
    }
  }
  for (int first = 0; first < tile.count; first += kCount) {
    const int count = min(kCount, tile.count - first);
    int32_t pair[kCount];
    const float* xr[kCount];
#pragma unroll
    for (int i = 0; i < kCount; ++i) {
      pair[i] = i < count ? sorted[tile.start + first + i] : 0;
      xr[i] = x + int64_t{pair[i] / x_div} * k;
    }
    float acc[M][R][kCount] = {};
    if constexpr (kFp8) {
      rows_dots_fp8<M, R, kCount>(q, s, rows, xr, count, k, lane, acc);
    } else {
      rows_dots<M, R, kCount>(w, rows, xr, count, k, lane, acc);
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (r >= rows) break;
#pragma unroll
      for (int i = 0; i < kCount; ++i) {
        if (i >= count) break;
        const float g = warp_sum(acc[0][r][i]);
        const float u = kGateUp ? warp_sum(acc[M - 1][r][i]) : 0.f;
        if (lane == 0) {
          y[int64_t{pair[i]} * n_rows + j0 + r] = kGateUp ? g / (1.f + expf(-g)) * u : g;
        }
      }
    }
  }
}

// tile_kernel<kGateUp, kFp8, kCount> for the smallest kCount (1, 2, 4 or kMoeTileTokens) that
// holds pairs_per_tile.
template <bool kGateUp, bool kFp8>
void launch_tiles(int pairs_per_tile, dim3 grid, cudaStream_t stream, const MoeExpertTables& t,
                  const MoeTile* tiles, const int32_t* n_tiles, const int32_t* sorted,
                  const float* x, int x_div, int64_t k, int64_t n_rows, float* y) {
  const auto go = [&](auto kernel) {
    launch_dependent(kernel, grid, kWarps * 32, 0, stream, t, tiles, n_tiles, sorted, x, x_div, k,
                     n_rows, y);
  };
  if (pairs_per_tile <= 1) {
    go(tile_kernel<kGateUp, kFp8, 1>);
  } else if (pairs_per_tile <= 2) {
    go(tile_kernel<kGateUp, kFp8, 2>);
  } else if (pairs_per_tile <= 4) {
    go(tile_kernel<kGateUp, kFp8, 4>);
  } else {
    go(tile_kernel<kGateUp, kFp8, kMoeTileTokens>);
  }
}

__global__ void combine_kernel(const float* ys, const float* weights, int top_k, int64_t d,
                               int ranks, float* out) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x;
  for (int64_t i = int64_t{blockIdx.y} * blockDim.x + threadIdx.x; i < d;
       i += int64_t{gridDim.y} * blockDim.x) {
    float o = 0.f;
    for (int k = 0; k < top_k; ++k) {
      const float* row = ys + (t * top_k + k) * ranks * d + i;
      float y = row[0];
      for (int r = 1; r < ranks; ++r) y += row[r * d];
      o += weights[t * top_k + k] * y;
    }
    out[t * d + i] = o;
  }
}

__global__ void add_gated_kernel(float* out, const float* y, const float* gate_logit, int64_t d) {
  const int64_t t = blockIdx.x;
  const float g = gate_logit ? 1.f / (1.f + expf(-gate_logit[t])) : 1.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) out[t * d + i] += g * y[t * d + i];
}

__global__ void gather_rows_kernel(const int32_t* sorted, const float* x, int x_div, int64_t d,
                                   float* xs) {
  const int64_t i = blockIdx.x;
  const float* src = x + int64_t{sorted[i] / x_div} * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) xs[i * d + j] = src[j];
}

__global__ void scatter_rows_kernel(const int32_t* sorted, const float* ysorted, int64_t d,
                                    float* ys) {
  const int64_t i = blockIdx.x;
  float* dst = ys + int64_t{sorted[i]} * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dst[j] = ysorted[i * d + j];
}

// The same moves with the rows in BF16 on the GEMM side: the inputs rounded as they are gathered,
// the outputs widened as they are scattered.
__global__ void gather_rows_bf16_kernel(const int32_t* sorted, const float* x, int x_div, int64_t d,
                                        __nv_bfloat16* xs) {
  const int64_t i = blockIdx.x;
  const float* src = x + int64_t{sorted[i] / x_div} * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) xs[i * d + j] = __float2bfloat16(src[j]);
}

__global__ void scatter_rows_bf16_kernel(const int32_t* sorted, const __nv_bfloat16* ysorted,
                                         int64_t d, float* ys) {
  const int64_t i = blockIdx.x;
  float* dst = ys + int64_t{sorted[i]} * d;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) dst[j] = __bfloat162float(ysorted[i * d + j]);
}

unsigned threads_for(int64_t d) {
  return static_cast<unsigned>(std::min<int64_t>(256, ((d + 31) / 32) * 32));
}

}  // namespace

int64_t moe_max_tiles(int64_t n_pairs, int n_local, int tile_tokens) {
  return std::min<int64_t>(n_pairs, n_pairs / tile_tokens + n_local);
}

void moe_align(const int32_t* ids, int64_t n_pairs, int first, int n_local, int tile_tokens,
               int32_t* sorted, MoeTile* tiles, int32_t* n_tiles, unsigned long long* expert_rows,
               cudaStream_t stream) {
  const size_t smem = 2 * sizeof(int32_t) * static_cast<size_t>(n_local);
  launch_dependent(align_kernel, 1, 1024, smem, stream, ids, n_pairs, first, n_local, tile_tokens,
                   sorted, tiles, n_tiles, expert_rows);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_gate_up(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                 int64_t max_tiles, const int32_t* sorted, const float* x, int top_k, int64_t d,
                 int64_t f, float* hidden, cudaStream_t stream, int pairs_per_tile) {
  if (max_tiles <= 0) return;
  const int64_t per_block = int64_t{kWarps} * kRowsPerWarp;
  const dim3 grid(static_cast<unsigned>((f + per_block - 1) / per_block),
                  static_cast<unsigned>(max_tiles));
  (t.gate_up_fp8 ? launch_tiles<true, true>
                 : launch_tiles<true, false>)(pairs_per_tile, grid, stream, t, tiles, n_tiles,
                                              sorted, x, top_k, d, f, hidden);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_down(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
              int64_t max_tiles, const int32_t* sorted, const float* hidden, int64_t f_in,
              int64_t d_out, float* ys, cudaStream_t stream, int pairs_per_tile) {
  if (max_tiles <= 0) return;
  const int64_t per_block = int64_t{kWarps} * kRowsPerWarp;
  const dim3 grid(static_cast<unsigned>((d_out + per_block - 1) / per_block),
                  static_cast<unsigned>(max_tiles));
  (t.down_fp8 ? launch_tiles<false, true>
              : launch_tiles<false, false>)(pairs_per_tile, grid, stream, t, tiles, n_tiles, sorted,
                                            hidden, 1, f_in, d_out, ys);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_gather_rows(const int32_t* sorted, int64_t count, const float* x, int x_div, int64_t d,
                     float* xs, cudaStream_t stream) {
  if (count <= 0) return;
  gather_rows_kernel<<<static_cast<unsigned>(count), threads_for(d), 0, stream>>>(sorted, x, x_div,
                                                                                  d, xs);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_scatter_rows(const int32_t* sorted, int64_t count, const float* ysorted, int64_t d,
                      float* ys, cudaStream_t stream) {
  if (count <= 0) return;
  scatter_rows_kernel<<<static_cast<unsigned>(count), threads_for(d), 0, stream>>>(sorted, ysorted,
                                                                                   d, ys);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_gather_rows_bf16(const int32_t* sorted, int64_t count, const float* x, int x_div,
                          int64_t d, uint16_t* xs, cudaStream_t stream) {
  if (count <= 0) return;
  gather_rows_bf16_kernel<<<static_cast<unsigned>(count), threads_for(d), 0, stream>>>(
      sorted, x, x_div, d, reinterpret_cast<__nv_bfloat16*>(xs));
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_scatter_rows_bf16(const int32_t* sorted, int64_t count, const uint16_t* ysorted,
                           int64_t d, float* ys, cudaStream_t stream) {
  if (count <= 0) return;
  scatter_rows_bf16_kernel<<<static_cast<unsigned>(count), threads_for(d), 0, stream>>>(
      sorted, reinterpret_cast<const __nv_bfloat16*>(ysorted), d, ys);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_combine(const float* ys, const float* weights, int64_t n_tokens, int top_k, int64_t d,
                 int ranks, float* out, cudaStream_t stream) {
  if (n_tokens <= 0) return;
  // Column blocks too, so that a small batch spreads over the GPU (each element's sum the same).
  const unsigned threads = threads_for(d);
  const auto col_blocks = static_cast<unsigned>(
      std::min<int64_t>((d + threads - 1) / threads, std::max<int64_t>(1, 256 / n_tokens)));
  launch_dependent(combine_kernel, dim3(static_cast<unsigned>(n_tokens), col_blocks), threads, 0,
                   stream, ys, weights, top_k, d, ranks, out);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_add_gated(float* out, const float* y, const float* gate_logit, int64_t n_tokens, int64_t d,
                   cudaStream_t stream) {
  if (n_tokens <= 0) return;
  add_gated_kernel<<<static_cast<unsigned>(n_tokens), threads_for(d), 0, stream>>>(out, y,
                                                                                   gate_logit, d);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
