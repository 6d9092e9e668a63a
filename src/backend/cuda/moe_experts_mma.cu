// The routed experts' projections on the tensor cores (see moe_experts.cuh): one block per tile of
// up to kMoeMmaTileTokens pairs of one expert and kRowsPerBlock output rows. The tile's input rows
// are rounded to BF16 into shared memory a k-chunk at a time; each warp owns 16 weight rows and
// streams them from the expert's matrix straight into mma.sync A fragments (BF16: 16-byte loads;
// F8_E4M3_G128: 8 codes widened to BF16 as they load, expert_rows.cuh),
// several k-blocks in flight, the pairs as the N side (two n8 tiles). A warp's 16-byte load covers
// 8 consecutive k of a row, so within each 32-wide k-block the MMA's k order is permuted (thread
// quad qd holds physical k 8qd..8qd+7 as logical k 2qd, 2qd+1, 2qd+8, 2qd+9 of two k16 steps); the
// inputs are read with the same permutation, which a dot product does not see. The epilogue applies
// SiLU(gate) * up or stores the down rows. Each weight byte is read once per tile, and a pair's
// sums run in the same order whatever else shares its tile (batch invariance).
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/expert_rows.cuh"
#include "backend/cuda/mma_tiles.cuh"
#include "backend/cuda/moe_experts.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerBlock = 16 * kWarps;
constexpr int kChunk = 1024;        // k columns of the inputs staged per pass
constexpr int kPad = 32;            // 64 bytes: rows g and g + 1 of one ldmatrix-free phase apart
constexpr int kLd = kChunk + kPad;  // staged row stride, elements
constexpr int kUnroll = 4;          // 32-wide k-blocks whose weights a warp loads before using
static_assert(kMoeMmaTileTokens == 16, "the tile is two n8 MMA tiles of pairs");

// One weight row as the kernel reads it: BF16 values at p, or FP8 codes at p and the row's scales
// at s (expert_rows.cuh).
struct WeightRow {
  const uint8_t* p;
  const float* s;
};

// Weights c .. c + 7 of a row as BF16 pairs: a BF16 row's 16 bytes past L1, or an FP8 row's 8
// codes as their BF16 copy's values (so the sums are a BF16 expert's).
template <bool kFp8>
__device__ __forceinline__ uint4 load_weights(const WeightRow& row, int64_t c) {
  if constexpr (kFp8) {
    const uint2 codes = __ldg(reinterpret_cast<const uint2*>(row.p + c));
    return e4m3x8_bf16_copy(codes, __ldg(row.s + c / kFp8GroupCols));
  } else {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(row.p + 2 * c));
    return v;
  }
}

__device__ __forceinline__ uint32_t word(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// acc[t] += W(16 rows: lo = row g, hi = row g + 8; words 2s, 2s + 1 of step s) x B(pairs of n8 tile
// t) for the two k16 steps of one 32-wide k-block.
__device__ __forceinline__ void mma_block(float (&acc)[2][4], const uint4& lo, const uint4& hi,
                                          const uint4 (&b)[2]) {
#pragma unroll
  for (int s = 0; s < 2; ++s) {
    const uint32_t a[4] = {word(lo, 2 * s), word(hi, 2 * s), word(lo, 2 * s + 1),
                           word(hi, 2 * s + 1)};
#pragma unroll
    for (int t = 0; t < 2; ++t) mma::mma_bf16(acc[t], a, word(b[t], 2 * s), word(b[t], 2 * s + 1));
  }
}

// The same for a 16-wide tail: 8-byte loads, one k16 step (words 0, 1).
__device__ __forceinline__ void mma_tail(float (&acc)[2][4], const uint2& lo, const uint2& hi,
                                         const uint2 (&b)[2]) {
  const uint32_t a[4] = {lo.x, hi.x, lo.y, hi.y};
#pragma unroll
  for (int t = 0; t < 2; ++t) mma::mma_bf16(acc[t], a, b[t].x, b[t].y);
}

// y[p][j] = silu(x_p . gate_j) * (x_p . up_j) (kGateUp) or x_p . down_j for the tile's pairs p and
// this block's rows j; x_p = x[p / x_div] (fp32, rounded to BF16 here). kFp8: the matrices are
// F8_E4M3_G128 (k % 128 == 0, so no 16-wide tail).
template <bool kGateUp, bool kFp8>
__global__ void __launch_bounds__(kThreads, 2)
    tile_mma_kernel(MoeExpertTables t, const MoeTile* tiles, const int32_t* n_tiles,
                    const int32_t* sorted, const float* x, int x_div, int64_t k, int64_t n_rows,
                    float* y) {
  if (static_cast<int32_t>(blockIdx.y) >= *n_tiles) return;
  __shared__ __align__(16) uint16_t xs[16 * kLd];
  __shared__ int32_t pair_s[16];
  const MoeTile tile = tiles[blockIdx.y];
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, qd = lane & 3;
  if (threadIdx.x < 16) {
    pair_s[threadIdx.x] = static_cast<int>(threadIdx.x) < tile.count
                              ? sorted[tile.start + static_cast<int>(threadIdx.x)]
                              : -1;
  }
  const int64_t j0 = int64_t{blockIdx.x} * kRowsPerBlock + warp * 16;
  const bool active = j0 < n_rows;  // n_rows % 16 == 0 (moe_mma_fits)
  const int64_t row0 = active ? j0 + g : 0;
  const auto row_of = [&](const uint8_t* m, int64_t row) {
    if constexpr (kFp8) {
      return WeightRow{m + row * k, fp8_expert_scales(m, n_rows, k) + row * (k / kFp8GroupCols)};
    } else {
      return WeightRow{m + 2 * row * k, nullptr};
    }
  };
  const uint8_t* ma = (kGateUp ? t.gate : t.down)[tile.expert];
  const uint8_t* mb = kGateUp ? t.up[tile.expert] : ma;
  // Rows g and g + 8 of the warp's 16, of matrix a (gate or down) and b (up).
  const WeightRow la = row_of(ma, row0), ha = row_of(ma, row0 + 8), lb = row_of(mb, row0),
                  hb = row_of(mb, row0 + 8);
  float acc_a[2][4] = {}, acc_b[2][4] = {};
  __syncthreads();
  for (int64_t k0 = 0; k0 < k; k0 += kChunk) {
    const int width = static_cast<int>(k - k0 < kChunk ? k - k0 : kChunk);  // a multiple of 16
    for (int i = static_cast<int>(threadIdx.x); i < 16 * (width / 4); i += kThreads) {
      const int r = i / (width / 4), c = 4 * (i % (width / 4));
      const int32_t p = pair_s[r];
      float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
      if (p >= 0) v = *reinterpret_cast<const float4*>(x + int64_t{p / x_div} * k + k0 + c);
      *reinterpret_cast<uint2*>(xs + r * kLd + c) =
          make_uint2(mma::pack_bf16(v.x, v.y), mma::pack_bf16(v.z, v.w));
    }
    __syncthreads();
    if (active) {
      const int blocks = width / 32;
      const int64_t c0 = k0 + 8 * qd;  // this lane's first column of each 32-wide k-block
      int kb = 0;
      for (; kb + kUnroll <= blocks; kb += kUnroll) {
        uint4 wla[kUnroll], wha[kUnroll], wlb[kUnroll], whb[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int64_t c = c0 + (kb + u) * 32;
          wla[u] = load_weights<kFp8>(la, c);
          wha[u] = load_weights<kFp8>(ha, c);
          if (kGateUp) {
            wlb[u] = load_weights<kFp8>(lb, c);
            whb[u] = load_weights<kFp8>(hb, c);
          }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int c = (kb + u) * 32 + 8 * qd;
          const uint4 b[2] = {*reinterpret_cast<const uint4*>(xs + g * kLd + c),
                              *reinterpret_cast<const uint4*>(xs + (8 + g) * kLd + c)};
          mma_block(acc_a, wla[u], wha[u], b);
          if (kGateUp) mma_block(acc_b, wlb[u], whb[u], b);
        }
      }
      for (; kb < blocks; ++kb) {
        const int c = kb * 32 + 8 * qd;
        const uint4 b[2] = {*reinterpret_cast<const uint4*>(xs + g * kLd + c),
                            *reinterpret_cast<const uint4*>(xs + (8 + g) * kLd + c)};
        const int64_t at = c0 + kb * 32;
        mma_block(acc_a, load_weights<kFp8>(la, at), load_weights<kFp8>(ha, at), b);
        if (kGateUp) mma_block(acc_b, load_weights<kFp8>(lb, at), load_weights<kFp8>(hb, at), b);
      }
      if constexpr (!kFp8) {
        if (width % 32 != 0) {  // the last 16 columns
          const int c = blocks * 32 + 4 * qd;
          const uint2 b[2] = {*reinterpret_cast<const uint2*>(xs + g * kLd + c),
                              *reinterpret_cast<const uint2*>(xs + (8 + g) * kLd + c)};
          const int64_t at = 2 * (k0 + c);  // bytes
          mma_tail(acc_a, *reinterpret_cast<const uint2*>(la.p + at),
                   *reinterpret_cast<const uint2*>(ha.p + at), b);
          if (kGateUp) {
            mma_tail(acc_b, *reinterpret_cast<const uint2*>(lb.p + at),
                     *reinterpret_cast<const uint2*>(hb.p + at), b);
          }
        }
      }
    }
    __syncthreads();
  }
  if (!active) return;
#pragma unroll
  for (int tn = 0; tn < 2; ++tn) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int32_t p = pair_s[8 * tn + 2 * qd + (e & 1)];
      if (p < 0) continue;
      const float a = acc_a[tn][e];
      y[int64_t{p} * n_rows + j0 + g + 8 * (e >> 1)] =
          kGateUp ? a / (1.f + expf(-a)) * acc_b[tn][e] : a;
    }
  }
}

template <bool kGateUp>
void launch(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
            int64_t max_tiles, const int32_t* sorted, const float* x, int x_div, int64_t k,
            int64_t n_rows, float* y, cudaStream_t stream) {
  if (max_tiles <= 0) return;
  const dim3 grid(static_cast<unsigned>((n_rows + kRowsPerBlock - 1) / kRowsPerBlock),
                  static_cast<unsigned>(max_tiles));
  const auto kernel = (kGateUp ? t.gate_up_fp8 : t.down_fp8) ? tile_mma_kernel<kGateUp, true>
                                                             : tile_mma_kernel<kGateUp, false>;
  kernel<<<grid, kThreads, 0, stream>>>(t, tiles, n_tiles, sorted, x, x_div, k, n_rows, y);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool moe_mma_fits(int64_t k, int64_t n_rows) {
  return k > 0 && n_rows > 0 && k % 16 == 0 && n_rows % 16 == 0;
}

void moe_gate_up_mma(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                     int64_t max_tiles, const int32_t* sorted, const float* x, int top_k, int64_t d,
                     int64_t f, float* hidden, cudaStream_t stream) {
  launch<true>(t, tiles, n_tiles, max_tiles, sorted, x, top_k, d, f, hidden, stream);
}

void moe_down_mma(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                  int64_t max_tiles, const int32_t* sorted, const float* hidden, int64_t f_in,
                  int64_t d_out, float* ys, cudaStream_t stream) {
  launch<false>(t, tiles, n_tiles, max_tiles, sorted, hidden, 1, f_in, d_out, ys, stream);
}

}  // namespace shardlm::cuda
