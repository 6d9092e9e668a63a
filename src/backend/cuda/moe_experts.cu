// The routed experts' kernels (see moe_experts.cuh): the device-side grouping into tiles, the
// tiled BF16 GEMV-style expert projections (one warp per kRowsPerWarp output rows, up to
// kMoeTileTokens pairs per warp), the slot-ordered combine and the shared expert's gated add.
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe_experts.cuh"
#include "backend/cuda/reduce.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 8;        // warps per block
constexpr int kRowsPerWarp = 4;  // output rows per warp: each x load serves this many

// One block: count each local expert's pairs, lay the experts' pairs out one after another in
// tiles of up to kMoeTileTokens, then place each pair (the order within an expert is free: a
// pair's sums do not depend on its tile).
__global__ void align_kernel(const int32_t* ids, int64_t n_pairs, int first, int n_local,
                             int tile_tokens, int32_t* sorted, MoeTile* tiles, int32_t* n_tiles,
                             unsigned long long* expert_rows) {
  extern __shared__ int32_t counts[];  // [n_local] counts, then [n_local] cursors
  int32_t* cursor = counts + n_local;
  for (int e = threadIdx.x; e < n_local; e += blockDim.x) counts[e] = 0;
  __syncthreads();
  for (int64_t p = threadIdx.x; p < n_pairs; p += blockDim.x) {
    const int e = ids[p] - first;
    if (e >= 0 && e < n_local) atomicAdd(&counts[e], 1);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t start = 0, nt = 0;
    for (int e = 0; e < n_local; ++e) {
      cursor[e] = start;
      for (int32_t c = 0; c < counts[e]; c += tile_tokens) {
        tiles[nt++] = MoeTile{e, start + c, min(tile_tokens, counts[e] - c)};
      }
      start += counts[e];
    }
    *n_tiles = nt;
    if (expert_rows) *expert_rows += static_cast<unsigned long long>(start);
  }
  __syncthreads();
  for (int64_t p = threadIdx.x; p < n_pairs; p += blockDim.x) {
    const int e = ids[p] - first;
    if (e >= 0 && e < n_local) sorted[atomicAdd(&cursor[e], 1)] = static_cast<int32_t>(p);
  }
}

__device__ __forceinline__ void unpack8(const uint16_t* w, float* f) {
  const uint4 v = *reinterpret_cast<const uint4*>(w);
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

// acc[r][i] += w_r . x_i over kRows rows w_r (k apart) for each of the tile's pairs: every x load
// serves kRows rows (8-wide loads when k % 8 == 0). Rows at or past `rows` are skipped.
template <int kRows>
__device__ __forceinline__ void rows_dots(const uint16_t* w, int rows, const float* const* xr,
                                          int count, int64_t k, int lane,
                                          float (&acc)[kRows][kMoeTileTokens]) {
  if (k % 8 == 0) {
    for (int64_t i0 = int64_t{lane} * 8; i0 < k; i0 += 256) {
      float f[kRows][8];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (r < rows) unpack8(w + r * k + i0, f[r]);
      }
#pragma unroll
      for (int i = 0; i < kMoeTileTokens; ++i) {
        if (i >= count) break;
        const float4 a = *reinterpret_cast<const float4*>(xr[i] + i0);
        const float4 b = *reinterpret_cast<const float4*>(xr[i] + i0 + 4);
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          if (r >= rows) break;
          acc[r][i] += f[r][0] * a.x + f[r][1] * a.y + f[r][2] * a.z + f[r][3] * a.w +
                       f[r][4] * b.x + f[r][5] * b.y + f[r][6] * b.z + f[r][7] * b.w;
        }
      }
    }
    return;
  }
  for (int64_t i0 = lane; i0 < k; i0 += 32) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      const float f = bf16_at(w + r * k, i0);
#pragma unroll
      for (int i = 0; i < kMoeTileTokens; ++i) {
        if (i < count) acc[r][i] += f * xr[i][i0];
      }
    }
  }
}

// One warp per kRowsPerWarp output rows j of the tile's expert, for each of the tile's pairs:
// y[p][j] = silu(x . gate_j) * (x . up_j) (kGateUp) or x . down_j; x row of pair p:
// x[p / x_div]. A pair's sum for a row runs in the same order whatever the other rows and pairs.
template <bool kGateUp>
__global__ void tile_kernel(MoeExpertTables t, const MoeTile* tiles, const int32_t* n_tiles,
                            const int32_t* sorted, const float* x, int x_div, int64_t k,
                            int64_t n_rows, float* y) {
  constexpr int R = kRowsPerWarp;
  if (static_cast<int32_t>(blockIdx.y) >= *n_tiles) return;
  const MoeTile tile = tiles[blockIdx.y];
  const int lane = threadIdx.x & 31;
  const int64_t j0 = (int64_t{blockIdx.x} * kWarps + (threadIdx.x >> 5)) * R;
  if (j0 >= n_rows) return;
  const int rows = n_rows - j0 < R ? static_cast<int>(n_rows - j0) : R;
  int32_t pair[kMoeTileTokens];
  const float* xr[kMoeTileTokens];
#pragma unroll
  for (int i = 0; i < kMoeTileTokens; ++i) {
    pair[i] = i < tile.count ? sorted[tile.start + i] : 0;
    xr[i] = x + int64_t{pair[i] / x_div} * k;
  }
  float a[R][kMoeTileTokens] = {}, b[R][kMoeTileTokens] = {};
  rows_dots<R>((kGateUp ? t.gate : t.down)[tile.expert] + j0 * k, rows, xr, tile.count, k, lane, a);
  if (kGateUp) rows_dots<R>(t.up[tile.expert] + j0 * k, rows, xr, tile.count, k, lane, b);
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
#pragma unroll
    for (int i = 0; i < kMoeTileTokens; ++i) {
      if (i >= tile.count) break;
      const float g = warp_sum(a[r][i]);
      const float u = kGateUp ? warp_sum(b[r][i]) : 0.f;
      if (lane == 0) {
        y[int64_t{pair[i]} * n_rows + j0 + r] = kGateUp ? g / (1.f + expf(-g)) * u : g;
      }
    }
  }
}

__global__ void combine_kernel(const float* ys, const float* weights, int top_k, int64_t d,
                               int ranks, float* out) {
  const int64_t t = blockIdx.x;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
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

unsigned threads_for(int64_t d) {
  return static_cast<unsigned>(std::min<int64_t>(256, ((d + 31) / 32) * 32));
}

}  // namespace

int64_t moe_max_tiles(int64_t n_pairs, int n_local, int tile_tokens) {
  return std::min<int64_t>(n_pairs, n_pairs / tile_tokens + n_local);
}

void moe_align(const int32_t* ids, int64_t n_pairs, int first, int n_local, int tile_tokens,
               int32_t* sorted, MoeTile* tiles, int32_t* n_tiles,
               unsigned long long* expert_rows, cudaStream_t stream) {
  const size_t smem = 2 * sizeof(int32_t) * static_cast<size_t>(n_local);
  align_kernel<<<1, 1024, smem, stream>>>(ids, n_pairs, first, n_local, tile_tokens, sorted,
                                          tiles, n_tiles, expert_rows);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_gate_up(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                 int64_t max_tiles, const int32_t* sorted, const float* x, int top_k, int64_t d,
                 int64_t f, float* hidden, cudaStream_t stream) {
  if (max_tiles <= 0) return;
  const int64_t per_block = int64_t{kWarps} * kRowsPerWarp;
  const dim3 grid(static_cast<unsigned>((f + per_block - 1) / per_block),
                  static_cast<unsigned>(max_tiles));
  tile_kernel<true>
      <<<grid, kWarps * 32, 0, stream>>>(t, tiles, n_tiles, sorted, x, top_k, d, f, hidden);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_down(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
              int64_t max_tiles, const int32_t* sorted, const float* hidden, int64_t f_in,
              int64_t d_out, float* ys, cudaStream_t stream) {
  if (max_tiles <= 0) return;
  const int64_t per_block = int64_t{kWarps} * kRowsPerWarp;
  const dim3 grid(static_cast<unsigned>((d_out + per_block - 1) / per_block),
                  static_cast<unsigned>(max_tiles));
  tile_kernel<false>
      <<<grid, kWarps * 32, 0, stream>>>(t, tiles, n_tiles, sorted, hidden, 1, f_in, d_out, ys);
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

void moe_combine(const float* ys, const float* weights, int64_t n_tokens, int top_k, int64_t d,
                 int ranks, float* out, cudaStream_t stream) {
  if (n_tokens <= 0) return;
  combine_kernel<<<static_cast<unsigned>(n_tokens), threads_for(d), 0, stream>>>(ys, weights, top_k,
                                                                                 d, ranks, out);
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
