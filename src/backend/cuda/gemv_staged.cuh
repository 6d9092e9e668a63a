// The batch-1 GEMV with x staged in shared memory, for BF16 and FP8 weights (gemv.cu,
// gemv_fp8.cu). Each block first copies x into shared memory in the order its lanes read it, so
// that every warp-wide read of x is contiguous (four wavefronts), and can apply the input's
// RMSNorm there: it sums x's squares as rms_norm_kernel does and stores the normed rows (bit for
// bit the norm kernel's), so the norm kernel ahead of the GEMV is not needed. Blocks are persistent
// (as many as fit on the GPU at once, each warp taking rows j, j + warps, ...), so x is staged once
// per block, not once per row group. Each warp takes an equal share of the rows (so that no warp
// takes a second round that most others do not), R rows at a time, and issues the next rows' first
// loads before it reduces the ones it finished. Device code; included by the .cu files that launch
// it.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "backend/cuda/gemv.cuh"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/load_stream.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope_pair.cuh"

namespace shardlm::cuda {

inline constexpr int kStagedWarps = 8;  // per block
// x of up to 48K floats (192 KiB) fits a block's shared memory on Hopper (gemv_staged_fits asks
// the GPU).
inline constexpr int64_t kMaxStagedK = 48 * 1024;

// The weights of a staged GEMV: up to kGemvMaxSegments matrices of one row length laid end to
// end as one (Q/K/V), or gate and up (GATE: y[0] = silu(gate) * up).
struct StagedGemv {
  const void* w[kGemvMaxSegments];
  const float* scale[kGemvMaxSegments];  // a scale per row (FP8), or null
  float* y[kGemvMaxSegments];
  int64_t n[kGemvMaxSegments];
  int count;
  const float* norm_w;  // the input's RMSNorm weight, applied in the kernel; null: x as given
  float norm_eps;
  bool accumulate;  // y += the product
  // The kernels with a KV element type (Q/K/V with rope_store_kv in the epilogue): each warp takes
  // a rotary pair of rows of Q or K, or two rows of V, at a time, rotates the pair as
  // rope_store_kv does and writes K and V into the cache besides y.
  GemvRope rope;
};

// Eight BF16 weights (one 16-byte load) as floats.
__device__ __forceinline__ void bf16x8_to_float(const uint4& raw, float* f) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = __bfloat1622float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

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

// Weight formats: elements per 16-byte load and their widening to floats.
struct Bf16Rows {
  static constexpr int kPer = 8;
  using Elem = uint16_t;
  __device__ static void widen(const uint4& v, float* f) { bf16x8_to_float(v, f); }
};
struct Fp8Rows {
  static constexpr int kPer = 16;
  using Elem = uint8_t;
  __device__ static void widen(const uint4& v, float* f) {
    e4m3x4_to_float(v.x, f);
    e4m3x4_to_float(v.y, f + 4);
    e4m3x4_to_float(v.z, f + 8);
    e4m3x4_to_float(v.w, f + 12);
  }
};

// Global row j of the segments as (segment, row within it); j < the segments' total rows.
template <class Segs>
__device__ __forceinline__ int segment_of(const Segs& segs, int64_t& j) {
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

// Row s (0 or 1) of rotary unit u of Q/K/V (a.rope): units are the pairs of Q's heads, then K's,
// then V's rows two by two. Returns the segment; u becomes the row within it, pair the pair's
// index within its head (Q and K).
__device__ __forceinline__ int rope_unit(const StagedGemv& a, int64_t& u, int s, int& pair) {
  int seg = 0;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (seg == i && u >= a.n[i] / 2) {
      u -= a.n[i] / 2;
      seg = i + 1;
    }
  }
  pair = 0;
  if (seg == 2) {
    u = 2 * u + s;
    return seg;
  }
  const int half = a.rope.head_dim / 2;
  const int64_t head = u / half;
  pair = static_cast<int>(u - head * half);
  const int2 e = rope_pair_at(pair, a.rope.head_dim, a.rope.neox);
  u = head * a.rope.head_dim + (s ? e.y : e.x);
  return seg;
}

// One output: y = v, or y += v.
__device__ __forceinline__ void store_out(float* y, float v, bool accumulate) {
  *y = accumulate ? *y + v : v;
}

// The sum of squares of x[0, k) in rms_norm_kernel's order with `threads` threads (a multiple of
// 32, at most twice blockDim.x; blockDim.x a multiple of 32): thread t sums x[t], x[t + threads],
// ...; each warp's 32 sums are added as warp_sum adds them, then the warps' as block_sum does.
// Each thread of this block stands for threads t and t + blockDim.x. Every thread gets the sum.
__device__ __forceinline__ float rms_norm_sum(const float* x, int64_t k, int threads) {
  __shared__ float partial[64];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  constexpr int kLoads = 8;  // per thread it stands for, in flight before they are summed
  const int t[2] = {static_cast<int>(threadIdx.x), static_cast<int>(threadIdx.x + blockDim.x)};
  float sum[2] = {0.f, 0.f};
  for (int64_t base = 0; base < k; base += int64_t{kLoads} * threads) {
    float v[2][kLoads];
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int b = 0; b < kLoads; ++b) {
        const int64_t i = base + t[h] + int64_t{b} * threads;
        v[h][b] = t[h] < threads && i < k ? x[i] : 0.f;
      }
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int b = 0; b < kLoads; ++b) {
        if (t[h] < threads && base + t[h] + int64_t{b} * threads < k) sum[h] += v[h][b] * v[h][b];
      }
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) sum[h] = warp_sum(sum[h]);
  if (lane == 0) {
    partial[warp] = sum[0];
    partial[warp + warps] = sum[1];
  }
  __syncthreads();
  return warp_sum(lane < threads / 32 ? partial[lane] : 0.f);
}

// The epilogue of rotary unit u (sums v0, v1 of its two rows): Q and K pairs rotated by the
// token's angle, then into y, and K and V into the cache slot.
template <class Kv>
__device__ __forceinline__ void rotate_and_store(const StagedGemv& a, int64_t u, float v0,
                                                 float v1) {
  int64_t row0 = u, row1 = u;
  int pair;
  const int seg = rope_unit(a, row0, 0, pair);
  rope_unit(a, row1, 1, pair);
  float2 y = make_float2(v0, v1);
  if (seg < 2) {
    y = rotate_pair(y.x, y.y, rope_angle(a.rope.positions[0], a.rope.inv_freq[pair]));
  }
  float* out = pick(a.y, seg);
  out[row0] = y.x;
  out[row1] = y.y;
  if (seg == 0) return;
  Kv* cache = static_cast<Kv*>(seg == 1 ? a.rope.cache_k : a.rope.cache_v) +
              int64_t{a.rope.slots[0]} * a.n[1];
  store_kv_element(cache + row0, y.x);
  store_kv_element(cache + row1, y.y);
}

// rows: the segments' total rows, or n for gate/up, or the rotary units with Kv (rope_unit). Warp
// w (block * kStagedWarps + warp) takes rows [w rows_per_warp, (w + 1) rows_per_warp), R at a
// time (2R weight rows for gate/up; one unit of 2 rows with Kv, R = 2); grid: ceil(rows /
// (rows_per_warp kStagedWarps)) blocks of kStagedWarps warps; dynamic shared memory k floats.
// k % Rows::kPer == 0. Kv: void, or the KV cache's element type (uint16_t BF16, uint8_t FP8) for
// the Q/K/V GEMV that rotates and stores (a.rope).
template <class Rows, int R, int U, bool GATE, bool NORM, class Kv = void>
__global__ void __launch_bounds__(kStagedWarps * 32)
    gemv_staged_kernel(StagedGemv a, int64_t k, int64_t rows, int64_t rows_per_warp,
                       const float* x) {
  constexpr bool ROPE = !std::is_void_v<Kv>;
  static_assert(!ROPE || (R == 2 && !GATE), "rotary units are pairs of rows");
  constexpr int kStep = ROPE ? 1 : R;  // rows (units) a warp takes at a time
  extern __shared__ float4 xs[];       // [kQuads][kv]: xs[q * kv + c] = x[kPer c + 4q .. + 4)
  constexpr int S = GATE ? 2 * R : R;  // weight rows streamed per warp
  constexpr int kQuads = Rows::kPer / 4;
  const int64_t kv = k / Rows::kPer;  // 16-byte vectors per row
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t first = (int64_t{blockIdx.x} * kStagedWarps + warp) * rows_per_warp;
  const int64_t end = first + rows_per_warp < rows ? first + rows_per_warp : rows;

  const uint4* wrow[S];
  float wscale[S];
  bool live[S];  // a row of this warp's range (else nothing is loaded or stored)
  uint4 wv[U][S];
  auto load_pass = [&](int64_t c0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t c = c0 + u * 32 + lane;
#pragma unroll
      for (int s = 0; s < S; ++s) wv[u][s] = live[s] && c < kv ? load_stream(wrow[s] + c) : uint4{};
    }
  };
  auto start_rows = [&](int64_t j0) {  // the rows' pointers and scales, and their first pass
#pragma unroll
    for (int s = 0; s < S; ++s) {
      int64_t jl = ROPE ? j0 : j0 + (GATE ? s / 2 : s);
      live[s] = jl < end;
      if (!live[s]) jl = end - 1;
      int pair;
      const int seg = ROPE ? rope_unit(a, jl, s, pair) : GATE ? (s & 1) : segment_of(a, jl);
      const auto* base = static_cast<const typename Rows::Elem*>(pick(a.w, seg));
      wrow[s] = reinterpret_cast<const uint4*>(base + jl * k);
      const float* sc = pick(a.scale, seg);
      wscale[s] = sc ? sc[jl] : 1.f;
    }
    load_pass(0);
  };

  pdl_launch_dependents();
  int64_t j0 = first;
  if (j0 < end) start_rows(j0);  // in flight while x is staged (and the kernel ahead finishes)
  pdl_wait();

  // The norm's scale, as rms_norm_kernel computes it (so the staged rows are its rows, bit for
  // bit: a token's output is the same alone, here, and in a batch, after the norm kernel).
  float scale = 1.f;
  if constexpr (NORM) {
    const float sum = rms_norm_sum(x, k, rms_norm_threads(k));
    scale = 1.f / sqrtf(sum / static_cast<float>(k) + a.norm_eps);
  }
  // x (normed) into shared memory, kStage float4s per thread in flight at a time.
  constexpr int kStage = 8;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  const int64_t k4 = k / 4;
  for (int64_t i0 = threadIdx.x; i0 < k4; i0 += int64_t{kStage} * blockDim.x) {
    float4 v[kStage], g[kStage];
#pragma unroll
    for (int b = 0; b < kStage; ++b) {
      const int64_t i = i0 + int64_t{b} * blockDim.x;
      if (i >= k4) break;
      v[b] = x4[i];
      if constexpr (NORM) g[b] = reinterpret_cast<const float4*>(a.norm_w)[i];
    }
#pragma unroll
    for (int b = 0; b < kStage; ++b) {
      const int64_t i = i0 + int64_t{b} * blockDim.x;
      if (i >= k4) break;
      if constexpr (NORM) {
        const float4 t = v[b];
        v[b] = make_float4(t.x * scale * g[b].x, t.y * scale * g[b].y, t.z * scale * g[b].z,
                           t.w * scale * g[b].w);
      }
      xs[(i % kQuads) * kv + i / kQuads] = v[b];
    }
  }
  __syncthreads();

  for (; j0 < end; j0 += kStep) {
    float acc[S];
#pragma unroll
    for (int s = 0; s < S; ++s) acc[s] = 0.f;
    for (int64_t c0 = 0;;) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t c = c0 + u * 32 + lane;
        if (c >= kv) break;
        float xv[Rows::kPer];
#pragma unroll
        for (int q = 0; q < kQuads; ++q) {
          const float4 t = xs[q * kv + c];
          xv[4 * q] = t.x;
          xv[4 * q + 1] = t.y;
          xv[4 * q + 2] = t.z;
          xv[4 * q + 3] = t.w;
        }
#pragma unroll
        for (int s = 0; s < S; ++s) {
          float wf[Rows::kPer];
          Rows::widen(wv[u][s], wf);
#pragma unroll
          for (int e = 0; e < Rows::kPer; ++e) acc[s] = fmaf(wf[e], xv[e], acc[s]);
        }
      }
      c0 += 32 * U;
      if (c0 >= kv) break;
      load_pass(c0);
    }
    float row_scale[S];
#pragma unroll
    for (int s = 0; s < S; ++s) row_scale[s] = wscale[s];
    if (j0 + kStep < end) start_rows(j0 + kStep);  // the next rows' loads before the sums
#pragma unroll
    for (int s = 0; s < S; ++s) acc[s] = warp_sum(acc[s]) * row_scale[s];
    if (lane != 0) continue;
    if constexpr (ROPE) {
      rotate_and_store<Kv>(a, j0, acc[0], acc[1]);
    } else {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t j = j0 + r;
        if (j >= end) break;
        if constexpr (GATE) {
          const float g = acc[2 * r], u = acc[2 * r + 1];
          store_out(a.y[0] + j, g / (1.f + expf(-g)) * u, a.accumulate);
        } else {
          int64_t jl = j;
          const int seg = segment_of(a, jl);
          store_out(pick(a.y, seg) + jl, acc[r], a.accumulate);
        }
      }
    }
  }
}

}  // namespace shardlm::cuda

namespace shardlm::cuda {

// The staged kernel's arguments from GemvSegments or Fp8Segments: their shared fields (the caller
// adds the row scales).
template <class Segs>
StagedGemv staged_args(const Segs& segs) {
  StagedGemv a{};
  for (int s = 0; s < kGemvMaxSegments; ++s) {
    a.w[s] = segs.w[s];
    a.y[s] = segs.y[s];
    a.n[s] = segs.n[s];
  }
  a.count = segs.count;
  a.norm_w = segs.norm_w;
  a.norm_eps = segs.norm_eps;
  a.accumulate = segs.accumulate;
  return a;
}

// Blocks of `kernel` (kStagedWarps warps each) resident on the current GPU at once with smem
// bytes of dynamic shared memory each.
int staged_resident_blocks(const void* kernel, size_t smem);
// The dynamic shared memory a block may opt in to on the current GPU (1 KiB left for static
// shared memory), capped at kMaxStagedK floats.
size_t staged_smem_limit();
// Lets `kernel` take staged_smem_limit() bytes of dynamic shared memory (above 48 KiB a kernel must
// ask); returns true, for a launcher's once-only static.
bool allow_staged_smem(const void* kernel);

// Whether the staged kernel takes this shape: one token, k a multiple of the weights' 16-byte
// vector (8 BF16, 16 FP8), and x (k floats) within kMaxStagedK and the shared memory a block of
// the current GPU may have (227 KiB on Hopper, 163 KiB on an A100, 99 KiB on Ada).
bool gemv_staged_fits(int64_t k, int64_t n_tokens, int per_load);

// One token: y[s] (+)= rms_norm(x) W_s^T (or x W_s^T without norm_w), times each row's scale;
// gate: y[0] = silu(gate) * up over a.w = {gate, up}. rows: the segments' total rows (n for
// gate/up). x: [k] fp32, 16-byte aligned, as is norm_w.
void gemv_staged_bf16(const StagedGemv& a, int64_t k, int64_t rows, bool gate, const float* x,
                      cudaStream_t stream);
void gemv_staged_fp8(const StagedGemv& a, int64_t k, int64_t rows, bool gate, const float* x,
                     cudaStream_t stream);

// One token: y = {q, k, v} = rms_norm(x) {Wq, Wk, Wv}^T (a.norm_w set, three segments), q and k
// rotated by a.rope's position, and k and v stored in its cache slot (an FP8 E4M3 cache with
// a.rope.fp8_kv, else BF16): the Q/K/V GEMV and rope_store_kv in one launch. Weights BF16, or FP8
// with fp8_weights (a.scale). Every segment's rows even.
void gemv_staged_qkv_rope(const StagedGemv& a, int64_t k, bool fp8_weights, const float* x,
                          cudaStream_t stream);

}  // namespace shardlm::cuda
