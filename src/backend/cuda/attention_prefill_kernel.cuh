// The tensor-core prefill attention kernel, flash-attention-2 style, over a source of queries,
// keys and values that the caller chooses (a template argument): the paged GQA cache
// (attention_prefill.cu) or latent attention's keys and values expanded per head (mla_prefill.cu).
//
// Grid: (query head, query tile). A tile is kRows consecutive query rows of one sequence, listed
// on the device by list_prefill_tiles (longest-reaching tile of each sequence first), so the host
// reads nothing of the step's lengths. A block of 4 warps holds its tile's queries as BF16 in
// registers (16 rows per warp, mma A fragments) and walks the keys its rows can see in tiles of
// kKeys: the source loads each key/value tile into shared memory (two stages, the next tile
// loading while this one is used), S = Q K^T and O += P V run as mma.sync m16n8k16 BF16 with fp32
// accumulation, and the online softmax (log2 domain, fp32) keeps P in registers, where the S
// accumulators become the A fragments of P V. Shared memory rows are XOR-swizzled by 16-byte chunk
// so that ldmatrix reads are free of bank conflicts. Keys are DK wide, values DV wide.
//
// A source is a struct passed by value with two device members:
//   load_queries(s, seq, row0, h, n_rows, sq): query rows [row0, row0 + n_rows) of head h as
//     BF16 into sq ([kRows][DK / 8] swizzled 16-byte chunks; rows past n_rows as zeros);
//   load_kv(s, seq, h, key0, key_hi, sk, sv): keys [key0, key0 + kKeys) of sequence s (the
//     index in the launch's sequence list) for head h into sk ([kKeys][DK / 8]) and their values
//     into sv ([kKeys][DV / 8]), zeros from key_hi on; cp.async copies are committed by the kernel.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/mma_tiles.cuh"
#include "backend/cuda/online_softmax.cuh"

namespace shardlm::cuda::prefill {

inline constexpr int kWarps = 4;
inline constexpr int kThreads = kWarps * 32;
inline constexpr int kRows = 16 * kWarps;  // query rows per block
inline constexpr int kKeys = 64;           // keys per shared-memory tile

// The most tiles a batch can have (the tile list's length).
inline int max_tiles(int n_rows, int n_seqs) {
  return (n_rows + kRows - 1) / kRows + n_seqs;
}

// Lists every (sequence, first row of the tile) of seqs[0, n_seqs) in tiles[0, total), the rest
// of tiles[0, n_max) as (-1, 0); one block (attention_prefill.cu).
void list_tiles(const DeviceAttnSeq* seqs, int n_seqs, int2* tiles, int n_max,
                cudaStream_t stream);

// What every source shares: the launch's sequences and tiles, the output and the softmax.
struct Common {
  const DeviceAttnSeq* seqs;
  const int2* tiles;  // [max_tiles] (sequence, first row in it) or (-1, 0)
  int tile_base;      // the launch's first tile (grids hold at most 65,535 tiles in y)
  int n_heads;
  int window;         // 0: unlimited
  float scale_log2;   // scale * log2(e)
  float* out;         // [n_rows][n_heads][DV] fp32
  // Only the keys at positions [key_begin, key_end) (one pass of a softmax split over key ranges);
  // with lse, each (row, head)'s log2-sum-exp of its scores there into lse[row * n_heads + head]
  // (-inf, and an output of zeros, where the row sees none of them).
  int key_begin = 0, key_end = INT_MAX;
  float* lse = nullptr;
};

// Shared-memory bytes: two stages of keys and values; the queries pass through the second key
// stage on their way to registers (kRows == kKeys), so a block takes 64 KB at 128-wide heads.
template <int DK, int DV>
constexpr size_t smem_bytes() {
  return size_t{2 * kKeys} * (DK / 8 + DV / 8) * 16;
}

template <int DK, int DV, int kMinBlocks, class Src>
__global__ void __launch_bounds__(kThreads, kMinBlocks) prefill_kernel(Common a, Src src) {
  using mma::ldmatrix_x4;
  using mma::ldmatrix_x4_trans;
  using mma::mma_bf16;
  using SK = mma::Swizzled<DK>;
  using SV = mma::Swizzled<DV>;
  constexpr int kCK = SK::kChunks, kCV = SV::kChunks;
  const int2 tile = a.tiles[a.tile_base + static_cast<int>(blockIdx.y)];
  if (tile.x < 0) return;
  const DeviceAttnSeq seq = a.seqs[tile.x];
  const int h = static_cast<int>(blockIdx.x);
  const int n_rows = min(kRows, seq.n_tokens - tile.y);
  const int pos0 = seq.n_past + tile.y;  // position of the tile's first row
  // Keys [key_lo, key_hi) are seen by some row.
  const int key_hi = min(pos0 + n_rows, a.key_end);
  const int key_lo = max(a.window > 0 ? max(0, pos0 - a.window + 1) : 0, a.key_begin);

  static_assert(kRows == kKeys, "the queries are staged in a key stage");
  extern __shared__ uint4 smem[];
  uint4* sk = smem;                  // [2][kKeys][kCK]
  uint4* sv = sk + 2 * kKeys * kCK;  // [2][kKeys][kCV]
  uint4* sq = sk + kKeys * kCK;      // [kRows][kCK]: key stage 1 until the first prefetch
  const int row0 = seq.first_row + tile.y;
  src.load_queries(tile.x, seq, row0, h, n_rows, sq);
  const int n_kv_tiles = max(0, (key_hi - key_lo + kKeys - 1) / kKeys);
  src.load_kv(tile.x, seq, h, key_lo, key_hi, sk, sv);
  mma::cp_async_commit();
  __syncthreads();

  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, qd = lane & 3;  // the fragment row (and row + 8) and column pair
  uint32_t qf[DK / 16][4];
#pragma unroll
  for (int kk = 0; kk < DK / 16; ++kk) {
    ldmatrix_x4(qf[kk], sq + SK::at(warp * 16 + (lane & 15), 2 * kk + (lane >> 4)));
  }
  __syncthreads();  // every warp has its queries before key stage 1 is loaded
  // This thread's two rows (clamped into the tile: rows past its end compute and are dropped).
  int pos[2], lo[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    pos[i] = pos0 + min(warp * 16 + g + 8 * i, n_rows - 1);
    lo[i] = a.window > 0 ? pos[i] - a.window + 1 : 0;
  }
  float o[DV / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  for (int t = 0; t < n_kv_tiles; ++t) {
    const int stage = t & 1, key0 = key_lo + t * kKeys;
    if (t + 1 < n_kv_tiles) {
      src.load_kv(tile.x, seq, h, key0 + kKeys, key_hi, sk + (stage ^ 1) * kKeys * kCK,
                  sv + (stage ^ 1) * kKeys * kCV);
      mma::cp_async_commit();
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();
    const uint4* kb = sk + stage * kKeys * kCK;
    const uint4* vb = sv + stage * kKeys * kCV;

    float s[kKeys / 8][4] = {};  // S = Q K^T: 16 rows x kKeys per warp
#pragma unroll
    for (int kk = 0; kk < DK / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kKeys / 16; ++np) {
        uint32_t b[4];
        ldmatrix_x4(
            b, kb + SK::at(np * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
        mma_bf16(s[2 * np], qf[kk], b[0], b[1]);
        mma_bf16(s[2 * np + 1], qf[kk], b[2], b[3]);
      }
    }
    const bool mask = a.window > 0 || key0 + kKeys - 1 > pos0 || key0 + kKeys > key_hi;
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = e >> 1, j = key0 + nt * 8 + 2 * qd + (e & 1);
        const float x = s[nt][e] * a.scale_log2;
        s[nt][e] = mask && (j > pos[i] || j < lo[i] || j >= key_hi) ? -INFINITY : x;
      }
    }
    float corr[2];
    online_softmax_step(s, m, l, corr);
    online_softmax_rescale(o, corr);
#pragma unroll
    for (int kt = 0; kt < kKeys / 16; ++kt) {  // O += P V, P straight from the S accumulators
      uint32_t pa[4];
      weights_fragment(s, kt, pa);
#pragma unroll
      for (int dp = 0; dp < DV / 16; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(
            b, vb + SV::at(kt * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4)));
        mma_bf16(o[2 * dp], pa, b[0], b[1]);
        mma_bf16(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before it is loaded again
  }

  const int64_t row_stride = int64_t{a.n_heads} * DV;
  float* out0 = a.out + int64_t{row0} * row_stride + int64_t{h} * DV;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] = quad_sum(l[i]);
    const int r = warp * 16 + g + 8 * i;
    if (r >= n_rows) continue;
    const float inv = l[i] > 0.f ? 1.f / l[i] : 0.f;
    if (a.lse && qd == 0) {
      a.lse[(int64_t{row0} + r) * a.n_heads + h] = l[i] > 0.f ? m[i] + log2f(l[i]) : -INFINITY;
    }
    float* dst = out0 + r * row_stride + 2 * qd;
#pragma unroll
    for (int dt = 0; dt < DV / 8; ++dt) {
      *reinterpret_cast<float2*>(dst + dt * 8) =
          make_float2(o[dt][2 * i] * inv, o[dt][2 * i + 1] * inv);
    }
  }
}

// Lists the tiles of seqs[0, n_seqs) (in tile_scratch: max_tiles int2) and runs the kernel over
// them, n_heads blocks a tile.
template <int DK, int DV, int kMinBlocks, class Src>
void launch(Common a, const Src& src, int n_rows, int n_seqs, int2* tile_scratch,
            cudaStream_t stream) {
  if (n_rows == 0 || n_seqs == 0) return;
  const int n_tiles = max_tiles(n_rows, n_seqs);
  list_tiles(a.seqs, n_seqs, tile_scratch, n_tiles, stream);
  a.tiles = tile_scratch;
  constexpr size_t kBytes = smem_bytes<DK, DV>();
  // Set on every launch: the attribute is per device, and this is a host-side call of no cost
  // next to a prefill step.
  SHARDLM_CUDA_CHECK(cudaFuncSetAttribute(prefill_kernel<DK, DV, kMinBlocks, Src>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(kBytes)));
  constexpr int kMaxGridY = 65535;
  for (a.tile_base = 0; a.tile_base < n_tiles; a.tile_base += kMaxGridY) {
    const int tiles = std::min(kMaxGridY, n_tiles - a.tile_base);
    const dim3 grid(static_cast<unsigned>(a.n_heads), static_cast<unsigned>(tiles));
    prefill_kernel<DK, DV, kMinBlocks, Src><<<grid, kThreads, kBytes, stream>>>(a, src);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda::prefill
