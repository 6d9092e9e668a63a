// FP8 GEMV kernel: each warp of a four-warp block reads R weight rows (two per row for gate/up),
// all of the batch's tokens at once. A pass of a warp issues R x U 16-byte loads before it uses
// any; lane l reads weights [16c, 16c + 16) for c = l, l + 32, ..., so every warp-wide load is 512
// contiguous bytes. Weights are widened E4M3 -> half2 -> float2 in registers (two cvt per four
// weights) and multiplied in fp32; the row's scale multiplies the finished sum.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdlib>
#include <string>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv_fp8.cuh"
#include "backend/cuda/load_stream.cuh"
#include "backend/cuda/reduce.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 4;  // per block

// Four E4M3 weights (one 32-bit word, first weight in the low byte) as floats.
__device__ __forceinline__ void e4m3x4_to_float(uint32_t word, float* f) {
  const __half2_raw lo =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(word & 0xffffu), __NV_E4M3);
  const __half2_raw hi =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(word >> 16), __NV_E4M3);
  const float2 a = __half22float2(__half2(lo)), b = __half22float2(__half2(hi));
  f[0] = a.x;
  f[1] = a.y;
  f[2] = b.x;
  f[3] = b.y;
}

// acc[t][s] += w_s[16c .. 16c + 16) . x[t][16c .. 16c + 16), in element order.
template <int NT, int S>
__device__ __forceinline__ void fma_vector(const uint4 (&wv)[S], const float* __restrict__ x,
                                           int64_t k, int64_t c, float (&acc)[NT][S]) {
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
        const float4 a = __ldg(xr + q);
        acc[t][s] = fmaf(wf[4 * q], a.x, acc[t][s]);
        acc[t][s] = fmaf(wf[4 * q + 1], a.y, acc[t][s]);
        acc[t][s] = fmaf(wf[4 * q + 2], a.z, acc[t][s]);
        acc[t][s] = fmaf(wf[4 * q + 3], a.w, acc[t][s]);
      }
    }
  }
}

// Global row j of the segments as (segment, row within it).
__device__ __forceinline__ int segment_of(const Fp8Segments& segs, int64_t& j) {
  int s = 0;
#pragma unroll
  for (int i = 0; i + 1 < kGemvMaxSegments; ++i) {
    if (s == i && i + 1 < segs.count && j >= segs.n[i]) {
      j -= segs.n[i];
      s = i + 1;
    }
  }
  return s;
}

// a[s] by selects: a runtime index into the kernel's parameters would copy them to local memory.
template <typename T>
__device__ __forceinline__ T pick(const T (&a)[kGemvMaxSegments], int s) {
  static_assert(kGemvMaxSegments == 3);
  return s == 0 ? a[0] : s == 1 ? a[1] : a[2];
}

// rows: the segments' total rows, or n for gate/up (segs.w = {gate, up}, segs.y[0] = out).
// Grid: ceil(rows / (kWarps * R)) blocks of kWarps warps.
template <int NT, int R, int U, bool GATE>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_fp8_kernel(Fp8Segments segs, int64_t k, int64_t rows, const float* __restrict__ x) {
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

  const int64_t k16 = k / 16;
  int64_t c0 = 0;
  for (; c0 + kChunk <= k16; c0 += kChunk) {  // whole passes: every load issued, then used
    uint4 wv[U][S];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int s = 0; s < S; ++s) wv[u][s] = load_stream(wrow[s] + c0 + u * 32);
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
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t c = c0 + u * 32 + lane;
      if (c < k16) fma_vector<NT, S>(wv[u], x, k, c, acc);
    }
  }

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
        segs.y[0][t * rows + j] = g / (1.f + expf(-g)) * u;
      } else {
        int64_t jl = j;
        const int seg = segment_of(segs, jl);
        pick(segs.y, seg)[t * pick(segs.n, seg) + jl] = acc[t][r];
      }
    }
  }
}

// Batch 1 with x in shared memory. In the kernel above a lane's 16 weights need 64 contiguous
// bytes of x, so a warp's x loads stride 64 bytes across lanes and each costs 16 L1 wavefronts
// instead of 4: at FP8's 16 weights per load that, not DRAM, bounded the kernel (about half the
// copy ceiling on an H200). Here each block first stores x as xs[q][c] = x[16c + 4q .. + 4)
// (float4s), so lane c's q-th read is contiguous across the warp. kSharedWarps warps per block
// share the copy.
constexpr int kSharedWarps = 8;

template <int R, int U, bool GATE>
__global__ void __launch_bounds__(kSharedWarps * 32)
    gemv_fp8_shared_kernel(Fp8Segments segs, int64_t k, int64_t rows, const float* __restrict__ x) {
  extern __shared__ float4 xs[];       // [4][k / 16]
  constexpr int S = GATE ? 2 * R : R;  // weight rows streamed per warp
  constexpr int kChunk = 32 * U;
  const int64_t k16 = k / 16;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  for (int64_t i = threadIdx.x; i < 4 * k16; i += blockDim.x) xs[(i & 3) * k16 + (i >> 2)] = x4[i];
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t row0 = (int64_t{blockIdx.x} * kSharedWarps + warp) * R;
  const uint4* wrow[S];
  float scale[S];
#pragma unroll
  for (int s = 0; s < S; ++s) {
    int64_t j = row0 + (GATE ? s / 2 : s);
    if (j >= rows) j = rows - 1;
    const int seg = GATE ? (s & 1) : segment_of(segs, j);
    wrow[s] = reinterpret_cast<const uint4*>(pick(segs.w, seg) + j * k) + lane;
    scale[s] = pick(segs.scale, seg)[j];
  }
  float acc[S];
#pragma unroll
  for (int s = 0; s < S; ++s) acc[s] = 0.f;
  auto use = [&](const uint4(&wv)[S], int64_t c) {
    float xv[16];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float4 a = xs[q * k16 + c];
      xv[4 * q] = a.x;
      xv[4 * q + 1] = a.y;
      xv[4 * q + 2] = a.z;
      xv[4 * q + 3] = a.w;
    }
#pragma unroll
    for (int s = 0; s < S; ++s) {
      float wf[16];
      e4m3x4_to_float(wv[s].x, wf);
      e4m3x4_to_float(wv[s].y, wf + 4);
      e4m3x4_to_float(wv[s].z, wf + 8);
      e4m3x4_to_float(wv[s].w, wf + 12);
#pragma unroll
      for (int i = 0; i < 16; ++i) acc[s] = fmaf(wf[i], xv[i], acc[s]);
    }
  };
  int64_t c0 = 0;
  for (; c0 + kChunk <= k16; c0 += kChunk) {
    uint4 wv[U][S];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int s = 0; s < S; ++s) wv[u][s] = load_stream(wrow[s] + c0 + u * 32);
#pragma unroll
    for (int u = 0; u < U; ++u) use(wv[u], c0 + u * 32 + lane);
  }
  if (c0 < k16) {
    uint4 wv[U][S];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int s = 0; s < S; ++s)
        wv[u][s] = c0 + u * 32 + lane < k16 ? load_stream(wrow[s] + c0 + u * 32) : uint4{};
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (c0 + u * 32 + lane < k16) use(wv[u], c0 + u * 32 + lane);
  }
#pragma unroll
  for (int s = 0; s < S; ++s) acc[s] = warp_sum(acc[s]) * scale[s];
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int64_t j = row0 + r;
    if (j >= rows) break;
    if constexpr (GATE) {
      const float g = acc[2 * r], u = acc[2 * r + 1];
      segs.y[0][j] = g / (1.f + expf(-g)) * u;
    } else {
      int64_t jl = j;
      const int seg = segment_of(segs, jl);
      pick(segs.y, seg)[jl] = acc[r];
    }
  }
}

// x of up to 48K floats (192 KiB) fits a block's shared memory on Hopper. Batch 1 runs here by
// default (1.30x the global-memory kernel's decode on the H200, docs/benchmarks.md);
// SHARDLM_CUDA_FP8_GEMV_SHARED=0 keeps it on gemv_fp8_kernel (to compare).
constexpr int64_t kMaxSharedK = 48 * 1024;
bool shared_x_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("SHARDLM_CUDA_FP8_GEMV_SHARED");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

template <int R, int U, bool GATE>
void launch_shared(const Fp8Segments& segs, int64_t k, int64_t rows, const float* x,
                   cudaStream_t stream) {
  static const bool sized = [] {  // above 48 KiB a kernel must ask for its shared memory
    SHARDLM_CUDA_CHECK(cudaFuncSetAttribute(gemv_fp8_shared_kernel<R, U, GATE>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(kMaxSharedK * sizeof(float))));
    return true;
  }();
  (void)sized;
  constexpr int rows_per_block = kSharedWarps * R;
  const auto blocks = static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
  const size_t smem = static_cast<size_t>(k) * sizeof(float);
  gemv_fp8_shared_kernel<R, U, GATE><<<blocks, kSharedWarps * 32, smem, stream>>>(segs, k, rows, x);
}

template <int NT, int R, int U, bool GATE>
void launch(const Fp8Segments& segs, int64_t k, int64_t rows, const float* x, cudaStream_t stream) {
  constexpr int rows_per_block = kWarps * R;
  const auto blocks = static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
  gemv_fp8_kernel<NT, R, U, GATE><<<blocks, kWarps * 32, 0, stream>>>(segs, k, rows, x);
}

// Batch 1: one row per warp, 8 loads in flight (8 KiB per warp and pass over 2 rows for gate/up);
// larger batches read more rows per warp so that each x vector serves more weights.
template <bool GATE>
void run(const Fp8Segments& segs, int64_t k, int64_t rows, const float* x, int64_t n_tokens,
         cudaStream_t stream) {
  switch (n_tokens) {
    case 1:
      if (k <= kMaxSharedK && shared_x_enabled()) {
        launch_shared<1, 8, GATE>(segs, k, rows, x, stream);
      } else {
        launch<1, 1, 8, GATE>(segs, k, rows, x, stream);
      }
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

void gemv_fp8(const uint8_t* w, const float* scale, int64_t k, int64_t n, const float* x,
              int64_t n_tokens, float* y, cudaStream_t stream) {
  const Fp8Segments segs{{w}, {scale}, {y}, {n}, 1};
  gemv_fp8_segments(segs, k, x, n_tokens, stream);
}

void gemv_fp8_gate_up_silu(const uint8_t* w_gate, const float* s_gate, const uint8_t* w_up,
                           const float* s_up, int64_t k, int64_t n, const float* x,
                           int64_t n_tokens, float* gate, cudaStream_t stream) {
  if (n == 0) return;
  const Fp8Segments segs{{w_gate, w_up}, {s_gate, s_up}, {gate}, {n, n}, 2};
  run<true>(segs, k, n, x, n_tokens, stream);
}

}  // namespace shardlm::cuda
