// FP8 GEMV kernel: each warp of a four-warp block reads R weight rows (two per row for gate/up),
// all of the batch's tokens at once. A pass of a warp issues R x U 16-byte loads before it uses
// any; lane l reads weights [16c, 16c + 16) for c = l, l + 32, ..., so every warp-wide load is 512
// contiguous bytes. Weights are widened E4M3 -> half2 -> float2 in registers (two cvt per four
// weights) and multiplied in fp32; the row's scale multiplies the finished sum.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv_fp8.cuh"
#include "backend/cuda/gemv_fp8_mma.cuh"
#include "backend/cuda/gemv_staged.cuh"
#include "backend/cuda/load_stream.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/reduce.cuh"
#include "core/env_flag.h"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 4;  // per block

// acc[t][s] += w_s[16c .. 16c + 16) . x[t][16c .. 16c + 16), in element order.
template <int NT, int S>
__device__ __forceinline__ void fma_vector(const uint4 (&wv)[S], const float* x, int64_t k,
                                           int64_t c, float (&acc)[NT][S]) {
#pragma unroll
  for (int s = 0; s < S; ++s) {
    float wf[16];
    e4m3x4_to_float(wv[s].x, wf);
    e4m3x4_to_float(wv[s].y, wf + 4);
    e4m3x4_to_float(wv[s].z, wf + 8);
    e4m3x4_to_float(wv[s].w, wf + 12);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const float4* xr = reinterpret_cast<const float4*>(x + t * k) + 4 * c;
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float4 a = xr[q];  // a coherent load: x is written by the kernel ahead
        acc[t][s] = fmaf(wf[4 * q], a.x, acc[t][s]);
        acc[t][s] = fmaf(wf[4 * q + 1], a.y, acc[t][s]);
        acc[t][s] = fmaf(wf[4 * q + 2], a.z, acc[t][s]);
        acc[t][s] = fmaf(wf[4 * q + 3], a.w, acc[t][s]);
      }
    }
  }
}

// rows: the segments' total rows, or n for gate/up (segs.w = {gate, up}, segs.y[0] = out).
// Grid: ceil(rows / (kWarps * R)) blocks of kWarps warps.
template <int NT, int R, int U, bool GATE>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_fp8_kernel(Fp8Segments segs, int64_t k, int64_t rows, const float* x) {
  constexpr int S = GATE ? 2 * R : R;  // weight rows streamed per warp
  constexpr int kChunk = 32 * U;       // 16-byte vectors per warp and row in a pass
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row0 = (int64_t{blockIdx.x} * kWarps + warp) * R;
  const uint4* wrow[S];
  float scale[S];
#pragma unroll
  for (int s = 0; s < S; ++s) {
    int64_t j = row0 + (GATE ? s / 2 : s);
    if (j >= rows) j = rows - 1;  // past the end: read a valid row, never stored
    const int seg = GATE ? (s & 1) : segment_of(segs, j);
    wrow[s] = reinterpret_cast<const uint4*>(pick(segs.w, seg) + j * k) + lane;
    scale[s] = pick(segs.scale, seg)[j];
  }
  float acc[NT][S];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int s = 0; s < S; ++s) acc[t][s] = 0.f;

  pdl_launch_dependents();
  bool waited = false;  // the first pass's weights are loaded before the wait for x
  const int64_t k16 = k / 16;
  int64_t c0 = 0;
  for (; c0 + kChunk <= k16; c0 += kChunk) {  // whole passes: every load issued, then used
    uint4 wv[U][S];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int s = 0; s < S; ++s) wv[u][s] = load_stream(wrow[s] + c0 + u * 32);
    if (!waited) pdl_wait(), waited = true;
#pragma unroll
    for (int u = 0; u < U; ++u) fma_vector<NT, S>(wv[u], x, k, c0 + u * 32 + lane, acc);
  }
  if (c0 < k16) {  // the last, partial pass (k not a multiple of the chunk)
    uint4 wv[U][S];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int s = 0; s < S; ++s)
        wv[u][s] = c0 + u * 32 + lane < k16 ? load_stream(wrow[s] + c0 + u * 32) : uint4{};
    if (!waited) pdl_wait(), waited = true;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t c = c0 + u * 32 + lane;
      if (c < k16) fma_vector<NT, S>(wv[u], x, k, c, acc);
    }
  }
  if (!waited) pdl_wait();

#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int s = 0; s < S; ++s) acc[t][s] = warp_sum(acc[t][s]) * scale[s];
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t j = row0 + r;
    if (j >= rows) break;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if constexpr (GATE) {
        const float g = acc[t][2 * r], u = acc[t][2 * r + 1];
        store_out(segs.y[0] + t * rows + j, g / (1.f + expf(-g)) * u, segs.accumulate);
      } else {
        int64_t jl = j;
        const int seg = segment_of(segs, jl);
        store_out(pick(segs.y, seg) + t * pick(segs.n, seg) + jl, acc[t][r], segs.accumulate);
      }
    }
  }
}

// Batch 1 runs the staged kernel (gemv_staged.cuh: x in shared memory in the order the lanes
// read it) by default. In the kernel above a lane's 16 weights need 64 contiguous bytes of x, so
// a warp's x loads stride 64 bytes across lanes and each costs 16 L1 wavefronts instead of 4: at
// FP8's 16 weights per load that, not DRAM, bounded it (about half the copy ceiling on an H200).
// SHARDLM_CUDA_FP8_GEMV_SHARED=0 keeps batch 1 here (to compare).
bool shared_x_enabled() {
  static const bool on = env_flag("SHARDLM_CUDA_FP8_GEMV_SHARED", true);
  return on;
}

StagedGemv staged(const Fp8Segments& segs) {
  StagedGemv a = staged_args(segs);
  for (int s = 0; s < kGemvMaxSegments; ++s) a.scale[s] = segs.scale[s];
  return a;
}

template <int NT, int R, int U, bool GATE>
void launch(const Fp8Segments& segs, int64_t k, int64_t rows, const float* x, cudaStream_t stream) {
  constexpr int rows_per_block = kWarps * R;
  const auto blocks = static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
  launch_dependent(gemv_fp8_kernel<NT, R, U, GATE>, blocks, kWarps * 32, 0, stream, segs, k, rows,
                   x);
}

// Batch 1: one row per warp, 8 loads in flight (8 KiB per warp and pass over 2 rows for gate/up);
// larger batches read more rows per warp so that each x vector serves more weights.
template <bool GATE>
void run(const Fp8Segments& segs, int64_t k, int64_t rows, const float* x, int64_t n_tokens,
         cudaStream_t stream) {
  if (gemv_fp8_mma_takes(k, n_tokens)) {
    gemv_mma_fp8(staged(segs), k, rows, GATE, x, n_tokens, stream);
    return;
  }
  const bool staged_fits = gemv_staged_fits(k, n_tokens, Fp8Rows::kPer);
  if (segs.norm_w && !staged_fits) {
    fail("internal: an FP8 GEMV with its norm at {} tokens, k {} (check gemv_fp8_norm_fits)",
         n_tokens, k);
  }
  if (staged_fits && (segs.norm_w || shared_x_enabled())) {
    gemv_staged_fp8(staged(segs), k, rows, GATE, x, stream);
    return;
  }
  switch (n_tokens) {
    case 1:
      launch<1, 1, 8, GATE>(segs, k, rows, x, stream);
      break;
    case 2:
      launch<2, 2, 4, GATE>(segs, k, rows, x, stream);
      break;
    case 3:
      launch<3, 2, 4, GATE>(segs, k, rows, x, stream);
      break;
    case 4:
      launch<4, 2, 2, GATE>(segs, k, rows, x, stream);
      break;
    case 5:
      launch<5, 2, 2, GATE>(segs, k, rows, x, stream);
      break;
    case 6:
      launch<6, 2, 2, GATE>(segs, k, rows, x, stream);
      break;
    case 7:
      launch<7, 2, 2, GATE>(segs, k, rows, x, stream);
      break;
    default:
      launch<8, 2, 2, GATE>(segs, k, rows, x, stream);
      break;
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void gemv_fp8_segments(const Fp8Segments& segs, int64_t k, const float* x, int64_t n_tokens,
                       cudaStream_t stream) {
  int64_t rows = 0;
  for (int s = 0; s < segs.count; ++s) rows += segs.n[s];
  if (rows == 0) return;
  run<false>(segs, k, rows, x, n_tokens, stream);
}

void gemv_fp8_qkv_rope(const Fp8Segments& segs, const GemvRope& rope, int64_t k, const float* x,
                       cudaStream_t stream) {
  StagedGemv a = staged(segs);
  a.rope = rope;
  if (gemv_fp8_mma_takes(k, 1)) {
    gemv_mma_fp8_qkv_rope(a, k, x, stream);
  } else {
    gemv_staged_qkv_rope(a, k, true, x, stream);
  }
}

void gemv_fp8(const uint8_t* w, const float* scale, int64_t k, int64_t n, const float* x,
              int64_t n_tokens, float* y, cudaStream_t stream) {
  const Fp8Segments segs{{w}, {scale}, {y}, {n}, 1};
  gemv_fp8_segments(segs, k, x, n_tokens, stream);
}

void gemv_fp8_gate_up_silu(const uint8_t* w_gate, const float* s_gate, const uint8_t* w_up,
                           const float* s_up, int64_t k, int64_t n, const float* x,
                           int64_t n_tokens, float* gate, cudaStream_t stream, const float* norm_w,
                           float norm_eps) {
  if (n == 0) return;
  const Fp8Segments segs{{w_gate, w_up}, {s_gate, s_up}, {gate}, {n, n}, 2, norm_w, norm_eps};
  run<true>(segs, k, n, x, n_tokens, stream);
}

bool gemv_fp8_norm_fits(int64_t k, int64_t n_tokens) {
  if (gemv_fp8_mma_takes(k, 1)) return n_tokens == 1;
  return gemv_staged_fits(k, n_tokens, Fp8Rows::kPer);
}

}  // namespace shardlm::cuda
