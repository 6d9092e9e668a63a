// The routed experts' projections on the tensor cores (see moe_experts.cuh): one block per tile of
// up to kMoeMmaTileTokens pairs of one expert and kMmaRowsPerBlock output rows; the tile's input
// rows are rounded to BF16 into shared memory a k-chunk at a time, each warp multiplies them by
// 16 weight rows read straight from the expert's BF16 matrix (WMMA 16x16x16, fp32 accumulation),
// and the epilogue applies SiLU(gate) * up or stores the down rows. Each weight byte is read once
// per tile, and a pair's sums run in the same order whatever else shares its tile.
#include <cuda_bf16.h>
#include <mma.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe_experts.cuh"

namespace shardlm::cuda {

namespace {

using namespace nvcuda;

constexpr int kMmaWarps = 4;
constexpr int kMmaRowsPerBlock = 16 * kMmaWarps;
constexpr int kChunk = 256;         // k columns staged per pass
constexpr int kPad = 8;             // keeps the staged rows' starts off one bank
constexpr int kLd = kChunk + kPad;  // staged row stride, elements
static_assert(kMoeMmaTileTokens == 16, "the WMMA tile is 16 pairs");

using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// y[p][j] = silu(x_p . gate_j) * (x_p . up_j) (kGateUp) or x_p . down_j for the tile's pairs p and
// this block's rows j; x_p = x[p / x_div] (fp32, rounded to BF16 here).
template <bool kGateUp>
__global__ void __launch_bounds__(kMmaWarps * 32)
    tile_mma_kernel(MoeExpertTables t, const MoeTile* tiles, const int32_t* n_tiles,
                    const int32_t* sorted, const float* x, int x_div, int64_t k, int64_t n_rows,
                    float* y) {
  if (static_cast<int32_t>(blockIdx.y) >= *n_tiles) return;
  __shared__ __align__(32) __nv_bfloat16 a_s[16 * kLd];
  __shared__ __align__(32) float c_s[kMmaWarps][2][16 * 16];
  __shared__ int32_t pair_s[16];
  const MoeTile tile = tiles[blockIdx.y];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x < 16) {
    pair_s[threadIdx.x] = threadIdx.x < tile.count ? sorted[tile.start + threadIdx.x] : -1;
  }
  const int64_t j0 = int64_t{blockIdx.x} * kMmaRowsPerBlock + warp * 16;
  const bool active = j0 < n_rows;  // n_rows % 16 == 0 (moe_mma_fits)
  const uint16_t* wa = (kGateUp ? t.gate : t.down)[tile.expert] + j0 * k;
  const uint16_t* wb = kGateUp ? t.up[tile.expert] + j0 * k : nullptr;
  FragC acc_a, acc_b;
  wmma::fill_fragment(acc_a, 0.f);
  wmma::fill_fragment(acc_b, 0.f);
  __syncthreads();
  for (int64_t k0 = 0; k0 < k; k0 += kChunk) {
    const int width = static_cast<int>(k - k0 < kChunk ? k - k0 : kChunk);  // a multiple of 16
    for (int i = threadIdx.x; i < 16 * width; i += blockDim.x) {
      const int r = i / width, c = i % width;
      const int32_t p = pair_s[r];
      const float v = p >= 0 ? x[int64_t{p / x_div} * k + k0 + c] : 0.f;
      a_s[r * kLd + c] = __float2bfloat16_rn(v);
    }
    __syncthreads();
    if (active) {
      for (int c = 0; c < width; c += 16) {
        FragA a;
        FragB b;
        wmma::load_matrix_sync(a, a_s + c, kLd);
        wmma::load_matrix_sync(b, reinterpret_cast<const __nv_bfloat16*>(wa + k0 + c),
                               static_cast<unsigned>(k));
        wmma::mma_sync(acc_a, a, b, acc_a);
        if (kGateUp) {
          wmma::load_matrix_sync(b, reinterpret_cast<const __nv_bfloat16*>(wb + k0 + c),
                                 static_cast<unsigned>(k));
          wmma::mma_sync(acc_b, a, b, acc_b);
        }
      }
    }
    __syncthreads();
  }
  if (!active) return;
  wmma::store_matrix_sync(c_s[warp][0], acc_a, 16, wmma::mem_row_major);
  if (kGateUp) wmma::store_matrix_sync(c_s[warp][1], acc_b, 16, wmma::mem_row_major);
  __syncwarp();
  for (int i = lane; i < 16 * 16; i += 32) {
    const int r = i / 16, c = i % 16;
    const int32_t p = pair_s[r];
    if (p < 0) continue;
    const float g = c_s[warp][0][i];
    y[int64_t{p} * n_rows + j0 + c] = kGateUp ? g / (1.f + expf(-g)) * c_s[warp][1][i] : g;
  }
}

template <bool kGateUp>
void launch(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
            int64_t max_tiles, const int32_t* sorted, const float* x, int x_div, int64_t k,
            int64_t n_rows, float* y, cudaStream_t stream) {
  if (max_tiles <= 0) return;
  const dim3 grid(static_cast<unsigned>((n_rows + kMmaRowsPerBlock - 1) / kMmaRowsPerBlock),
                  static_cast<unsigned>(max_tiles));
  tile_mma_kernel<kGateUp>
      <<<grid, kMmaWarps * 32, 0, stream>>>(t, tiles, n_tiles, sorted, x, x_div, k, n_rows, y);
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
