// FP8 routed experts (F8_E4M3_G128, expert_rows.cuh) at every batch size on FP8 tensor cores (see
// moe_experts.cuh): the inputs quantised to E4M3 with a scale per row and 128 columns, then
// mma.sync m16n8k32 E4M3 x E4M3 with fp32 accumulators, so that no weight is widened by an
// instruction of its own. A block's four warps take the same 16 output rows, each a quarter of
// the 128-column groups; a group's four products are scaled by the weight row's and the input
// row's group scales into fp32 sums, and the warps' sums are added in warp order.
#include <cuda_fp8.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/expert_rows.cuh"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/moe_experts.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/reduce.cuh"
#include "core/env_flag.h"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

constexpr int kSplit = 4;  // warps per block, each over its share of the groups
constexpr int kRows = 16;  // output rows per block: the mma's M
constexpr int kGroup = static_cast<int>(kFp8GroupCols);
static_assert(kMoeTileTokens == 8 && kMoeMmaTileTokens == 16, "tiles of one or two mma columns");

// d += a (16x32 E4M3, row-major) * b (32x8 E4M3, column-major), fp32 accumulators (sm_89+).
__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

// Two floats as two E4M3 codes (the first in the low byte), rounded to nearest even, saturated.
__device__ __forceinline__ uint32_t e4m3x2_of(float a, float b) {
  return __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
}

// One warp per (row, group of 128 columns): s = max |x| / 448 (1 for an all-zero group), codes
// e4m3(x * (1 / s)), as quantize_activations_fp8 does for rows of 128 columns.
__global__ void quantize_groups_kernel(const float* x, int64_t n_groups, uint8_t* q, float* s) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t group = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) >> 5;
  if (group >= n_groups) return;
  const int lane = threadIdx.x & 31;
  const float4 v = reinterpret_cast<const float4*>(x + group * kGroup)[lane];
  const float m = warp_max(fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
  const float scale = m > 0.f ? m / kFp8E4M3Max : 1.f;
  const float inv = 1.f / scale;
  reinterpret_cast<uint32_t*>(q + group * kGroup)[lane] =
      e4m3x2_of(v.x * inv, v.y * inv) | (e4m3x2_of(v.z * inv, v.w * inv) << 16);
  if (lane == 0) s[group] = scale;
}

// Loads of one group (128 columns) for a thread: its 16 columns of each 64 (h) in rows g and
// g + 8 of each matrix, and of its input column g of each block of 8.
template <int kMats, int kBlocks>
struct GroupLoads {
  uint4 lo[kMats][2], hi[kMats][2], x[kBlocks][2];
};

// Output rows j0 .. j0 + 15 of the tile's expert for its pairs (columns of the mma, in blocks of
// 8): y[p][j] = silu(x_p . gate_j) * (x_p . up_j) (kGateUp) or x_p . down_j, x_p the E4M3 row
// xq[p / x_div] with scales xs. The 128-column groups are the mma's K in four steps of 32; thread
// (g, t) of a warp loads columns [16t, 16t + 16) of each 64 for rows g and g + 8 and for input
// column g of each block, and gives the mma those 16 columns as two k-steps (the same column
// order for weights and inputs, so the sums are those of the matrix's order, permuted within each
// 64 columns). A column's sums do not depend on the other columns.
template <bool kGateUp, int kUnroll, int kBlocks>
__global__ void __launch_bounds__(kSplit * 32)
    e4m3_tile_kernel(MoeExpertTables t, const MoeTile* tiles, const int32_t* n_tiles,
                     const int32_t* sorted, const uint8_t* xq, const float* xs, int x_div,
                     int64_t k, int64_t n_rows, float* y) {
  constexpr int M = kGateUp ? 2 : 1, B = kBlocks;
  pdl_launch_dependents();
  pdl_wait();
  if (static_cast<int32_t>(blockIdx.y) >= *n_tiles) return;
  const MoeTile tile = tiles[blockIdx.y];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tg = lane & 3;
  const int64_t j0 = int64_t{blockIdx.x} * kRows, groups = k / kGroup;
  const bool lo_in = j0 + g < n_rows, hi_in = j0 + g + 8 < n_rows;
  const uint8_t* a_lo[M];  // row j0 + g of each matrix from this thread's first column
  const float* s_lo[M];    // that row's group scales; row j0 + g + 8's are 8 rows on
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const uint8_t* base = (kGateUp ? (m == 0 ? t.gate : t.up) : t.down)[tile.expert];
    a_lo[m] = base + (j0 + g) * k + tg * 16;
    s_lo[m] = fp8_expert_scales(base, n_rows, k) + (j0 + g) * groups;
  }
  const int count = tile.count;
  const auto pair_at = [&](int c) { return c < count ? sorted[tile.start + c] : 0; };
  const uint8_t* xb[B];  // input column g of each block
  bool x_in[B];
  int32_t p0[B], p1[B];  // the pairs of output columns 2t and 2t + 1 of each block
  const float *xs0[B], *xs1[B];
#pragma unroll
  for (int b = 0; b < B; ++b) {
    xb[b] = xq + int64_t{pair_at(8 * b + g) / x_div} * k + tg * 16;
    x_in[b] = 8 * b + g < count;
    p0[b] = pair_at(8 * b + 2 * tg);
    p1[b] = pair_at(8 * b + 2 * tg + 1);
    xs0[b] = xs + int64_t{p0[b] / x_div} * groups;
    xs1[b] = xs + int64_t{p1[b] / x_div} * groups;
  }
  const int64_t per = (groups + kSplit - 1) / kSplit;
  const int64_t first = warp * per < groups ? warp * per : groups;
  const int64_t last = first + per < groups ? first + per : groups;
  const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
  float acc[M][B][4] = {};
  for (int64_t g0 = first; g0 < last; g0 += kUnroll) {
    GroupLoads<M, B> ld[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const bool in = g0 + u < last;
      const int64_t c = (g0 + u) * kGroup;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint8_t* p = a_lo[m] + c + h * 64;
          ld[u].lo[m][h] = in && lo_in ? __ldg(reinterpret_cast<const uint4*>(p)) : zero;
          ld[u].hi[m][h] = in && hi_in ? __ldg(reinterpret_cast<const uint4*>(p + 8 * k)) : zero;
        }
#pragma unroll
        for (int b = 0; b < B; ++b) {
          ld[u].x[b][h] =
              in && x_in[b] ? __ldg(reinterpret_cast<const uint4*>(xb[b] + c + h * 64)) : zero;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t gi = g0 + u;
      if (gi >= last) break;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const float wl = lo_in ? s_lo[m][gi] : 0.f, wh = hi_in ? s_lo[m][8 * groups + gi] : 0.f;
#pragma unroll
        for (int b = 0; b < B; ++b) {
          float d[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const uint4 &lo = ld[u].lo[m][h], &hi = ld[u].hi[m][h], &x = ld[u].x[b][h];
            mma_e4m3(d, lo.x, hi.x, lo.y, hi.y, x.x, x.y);
            mma_e4m3(d, lo.z, hi.z, lo.w, hi.w, x.z, x.w);
          }
          const float x0 = xs0[b][gi], x1 = xs1[b][gi];
          acc[m][b][0] += d[0] * (wl * x0);
          acc[m][b][1] += d[1] * (wl * x1);
          acc[m][b][2] += d[2] * (wh * x0);
          acc[m][b][3] += d[3] * (wh * x1);
        }
      }
    }
  }
  __shared__ float part[kSplit][M][B][4][32];
#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int b = 0; b < B; ++b) {
#pragma unroll
      for (int i = 0; i < 4; ++i) part[warp][m][b][i][lane] = acc[m][b][i];
    }
  }
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int b = 0; b < B; ++b) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {  // d[i]: row g (+ 8 for i >= 2), column 8b + 2t + (i & 1)
      const int col = 8 * b + 2 * tg + (i & 1);
      const int64_t row = j0 + g + (i >= 2 ? 8 : 0);
      if (col >= count || row >= n_rows) continue;
      float v[M];
#pragma unroll
      for (int m = 0; m < M; ++m) {
        v[m] = part[0][m][b][i][lane];
#pragma unroll
        for (int w = 1; w < kSplit; ++w) v[m] += part[w][m][b][i][lane];
      }
      const int32_t pair = (i & 1) ? p1[b] : p0[b];
      y[int64_t{pair} * n_rows + row] = kGateUp ? v[0] / (1.f + expf(-v[0])) * v[M - 1] : v[0];
    }
  }
}

// The kernel for tiles of up to tile_tokens pairs (8: one block of columns; 16: two).
template <bool kGateUp, int kUnroll>
void launch_e4m3_tiles(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                       int64_t max_tiles, const int32_t* sorted, const uint8_t* xq, const float* xs,
                       int x_div, int64_t k, int64_t n_rows, float* y, int tile_tokens,
                       cudaStream_t stream) {
  if (max_tiles <= 0) return;
  if (k % kGroup != 0) {
    fail("internal: FP8 experts {} wide: the E4M3 tiles take multiples of {}", k, kGroup);
  }
  if (tile_tokens > 16) fail("internal: E4M3 tiles of {} pairs (16 at most)", tile_tokens);
  const dim3 grid(static_cast<unsigned>((n_rows + kRows - 1) / kRows),
                  static_cast<unsigned>(max_tiles));
  // Two blocks of columns: half the groups in flight, so that the registers stay as for one.
  launch_dependent(tile_tokens <= 8 ? e4m3_tile_kernel<kGateUp, kUnroll, 1>
                                    : e4m3_tile_kernel<kGateUp, (kUnroll + 1) / 2, 2>,
                   grid, kSplit * 32, 0, stream, t, tiles, n_tiles, sorted, xq, xs, x_div, k,
                   n_rows, y);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool moe_e4m3_tiles_enabled() {
  return env_flag("SHARDLM_CUDA_FP8_EXPERT_MMA", true);
}

void moe_quantize_groups(const float* x, int64_t rows, int64_t k, uint8_t* q, float* scales,
                         cudaStream_t stream) {
  if (rows <= 0) return;
  if (k % kGroup != 0) fail("internal: moe_quantize_groups: {} columns, not groups of 128", k);
  const int64_t n_groups = rows * (k / kGroup);
  constexpr int kWarpsPerBlock = 8;
  launch_dependent(quantize_groups_kernel,
                   static_cast<unsigned>((n_groups + kWarpsPerBlock - 1) / kWarpsPerBlock),
                   kWarpsPerBlock * 32, 0, stream, x, n_groups, q, scales);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_gate_up_e4m3(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                      int64_t max_tiles, const int32_t* sorted, const uint8_t* xq, const float* xs,
                      int top_k, int64_t d, int64_t f, float* hidden, int tile_tokens,
                      cudaStream_t stream) {
  launch_e4m3_tiles<true, 2>(t, tiles, n_tiles, max_tiles, sorted, xq, xs, top_k, d, f, hidden,
                             tile_tokens, stream);
}

void moe_down_e4m3(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                   int64_t max_tiles, const int32_t* sorted, const uint8_t* hq, const float* hs,
                   int64_t f_in, int64_t d_out, float* ys, int tile_tokens, cudaStream_t stream) {
  launch_e4m3_tiles<false, 4>(t, tiles, n_tiles, max_tiles, sorted, hq, hs, 1, f_in, d_out, ys,
                              tile_tokens, stream);
}

}  // namespace shardlm::cuda
