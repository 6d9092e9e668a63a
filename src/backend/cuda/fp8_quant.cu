// FP8 quantisation kernels: one block per row for the absolute maximum (the scale), then the
// conversion with E4M3's round-to-nearest-even and saturation (cuda_fp8.h), four elements per
// access for fp32 rows of k % 4 == 0; a grid-stride loop for the element-wise dequantisation; the
// GEMM epilogue by rows, four columns per thread (element-wise where n % 4 != 0). The fused
// norm and SiLU-up quantisations hold a row in registers where it fits (every load in flight at
// once, the row read once); longer rows loop over global memory with the same sums and codes.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/rms_norm.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < n_warps ? partial[lane] : 0.f;
  return warp_max(v);
}

__device__ __forceinline__ float load(const uint16_t* p, int64_t i) {
  return __bfloat162float(__ushort_as_bfloat16(p[i]));
}
__device__ __forceinline__ float load(const float* p, int64_t i) {
  return p[i];
}

__device__ __forceinline__ uint8_t to_e4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

// The largest magnitude of four values.
__device__ __forceinline__ float absmax4(const float4& v) {
  return fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
}

// Four values times inv as E4M3 codes in one word, the first in the low byte.
__device__ __forceinline__ uint32_t e4m3x4(const float4& v, float inv) {
  return uint32_t{to_e4m3(v.x * inv)} | (uint32_t{to_e4m3(v.y * inv)} << 8) |
         (uint32_t{to_e4m3(v.z * inv)} << 16) | (uint32_t{to_e4m3(v.w * inv)} << 24);
}

// Block b quantises row b of src ([rows][k], bf16 bits or fp32).
template <typename T>
__global__ void quantize_rows_kernel(const T* __restrict__ src, int64_t k, uint8_t* __restrict__ q,
                                     float* __restrict__ scale) {
  const T* row = src + blockIdx.x * k;
  float m = 0.f;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) m = fmaxf(m, fabsf(load(row, i)));
  m = block_max(m);
  const float s = m > 0.f ? m / kFp8E4M3Max : 1.f;
  const float inv = 1.f / s;
  uint8_t* out = q + blockIdx.x * k;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) out[i] = to_e4m3(load(row, i) * inv);
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

__global__ void dequantize_rows_kernel(const uint8_t* __restrict__ q,
                                       const float* __restrict__ scale, int64_t k, int64_t n,
                                       uint16_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n * k;
       i += int64_t{gridDim.x} * blockDim.x) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(q[i], __NV_E4M3);
    const float v = __half2float(__half(h)) * scale[i / k];
    out[i] = __bfloat16_as_ushort(__float2bfloat16(v));
  }
}

// Row t of y (blockIdx.y strides over rows), four columns per thread: n % 4 == 0.
// sum: null (y scaled in place) or where the scaled product is added (y left as it is).
__global__ void scale_product_kernel(float* __restrict__ y, int64_t tokens, int64_t n,
                                     const float* __restrict__ x_scale,
                                     const float* __restrict__ w_scale, float* __restrict__ sum) {
  const int64_t n4 = n / 4;
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= n4) return;
  const float4 w = reinterpret_cast<const float4*>(w_scale)[c];
  for (int64_t t = blockIdx.y; t < tokens; t += gridDim.y) {
    const float xs = x_scale[t];
    float4 v = reinterpret_cast<const float4*>(y + t * n)[c];
    v.x *= xs * w.x;
    v.y *= xs * w.y;
    v.z *= xs * w.z;
    v.w *= xs * w.w;
    if (sum) {
      float4& s = reinterpret_cast<float4*>(sum + t * n)[c];
      s = make_float4(s.x + v.x, s.y + v.y, s.z + v.z, s.w + v.w);
    } else {
      reinterpret_cast<float4*>(y + t * n)[c] = v;
    }
  }
}

// Any n: the element-wise form.
__global__ void scale_product_any_kernel(float* y, int64_t tokens, int64_t n,
                                         const float* __restrict__ x_scale,
                                         const float* __restrict__ w_scale, float* sum) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < tokens * n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = y[i] * (x_scale[i / n] * w_scale[i % n]);
    if (sum) {
      sum[i] += v;
    } else {
      y[i] = v;
    }
  }
}

// Block b quantises fp32 row b of x, four elements per load and store: k % 4 == 0.
__global__ void quantize_rows4_kernel(const float* __restrict__ x, int64_t k,
                                      uint8_t* __restrict__ q, float* __restrict__ scale) {
  const float4* row = reinterpret_cast<const float4*>(x + blockIdx.x * k);
  const int64_t k4 = k / 4;
  float m = 0.f;
  for (int64_t i = threadIdx.x; i < k4; i += blockDim.x) m = fmaxf(m, absmax4(row[i]));
  m = block_max(m);
  const float s = m > 0.f ? m / kFp8E4M3Max : 1.f;
  const float inv = 1.f / s;
  uint32_t* out = reinterpret_cast<uint32_t*>(q + blockIdx.x * k);
  for (int64_t i = threadIdx.x; i < k4; i += blockDim.x) {
    out[i] = e4m3x4(row[i], inv);
  }
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

// One block per row (rms_norm_threads(dim) threads): the norm's sums exactly as rms_norm.cu's
// kernels, then the row's maximum and codes as quantize_rows_kernel's.
__global__ void norm_quantize_kernel(float* x, const float* residual, const float* w, int64_t dim,
                                     float eps, uint8_t* __restrict__ q,
                                     float* __restrict__ scale) {
  float* xr = x + blockIdx.x * dim;
  float sum = 0.f;
  if (residual) {
    const float* yr = residual + blockIdx.x * dim;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
      const float v = xr[i] + yr[i];
      xr[i] = v;
      sum += v * v;
    }
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) sum += xr[i] * xr[i];
  }
  sum = block_sum(sum);
  const float rs = 1.f / sqrtf(sum / static_cast<float>(dim) + eps);
  float m = 0.f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) m = fmaxf(m, fabsf(xr[i] * rs * w[i]));
  m = block_max(m);
  const float s = m > 0.f ? m / kFp8E4M3Max : 1.f;
  const float inv = 1.f / s;
  uint8_t* out = q + blockIdx.x * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) out[i] = to_e4m3(xr[i] * rs * w[i] * inv);
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

// norm_quantize_kernel with each thread's elements held in registers (dim <= kPer * blockDim.x):
// every load in flight at once and x read once, the sums, maximum and codes the same, in the same
// order.
template <int kPer>
__global__ void norm_quantize_regs_kernel(float* x, const float* residual, const float* w,
                                          int64_t dim, float eps, uint8_t* __restrict__ q,
                                          float* __restrict__ scale) {
  float* xr = x + blockIdx.x * dim;
  const float* yr = residual ? residual + blockIdx.x * dim : nullptr;
  float v[kPer], g[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int64_t i = threadIdx.x + int64_t{e} * blockDim.x;
    v[e] = i < dim ? xr[i] : 0.f;
    g[e] = i < dim ? w[i] : 0.f;
    if (yr && i < dim) v[e] += yr[i];
  }
  float sum = 0.f;
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int64_t i = threadIdx.x + int64_t{e} * blockDim.x;
    if (i >= dim) break;
    if (yr) xr[i] = v[e];
    sum += v[e] * v[e];
  }
  sum = block_sum(sum);
  const float rs = 1.f / sqrtf(sum / static_cast<float>(dim) + eps);
  float m = 0.f;
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    v[e] = v[e] * rs * g[e];  // zero past the row
    m = fmaxf(m, fabsf(v[e]));
  }
  m = block_max(m);
  const float s = m > 0.f ? m / kFp8E4M3Max : 1.f;
  const float inv = 1.f / s;
  uint8_t* out = q + blockIdx.x * dim;
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int64_t i = threadIdx.x + int64_t{e} * blockDim.x;
    if (i < dim) out[i] = to_e4m3(v[e] * inv);
  }
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

// silu(g) * u for four columns c of a row (g, u its raw values), the FP8 GEMM epilogue's scaling
// first where xs is given.
__device__ __forceinline__ float4 silu_mul4_of(float4 g, float4 u, int64_t c, const float* xs,
                                               const float4* gs4, const float4* us4) {
  if (xs) {
    const float a = *xs;
    const float4 gs = gs4[c], us = us4[c];
    g.x *= a * gs.x, g.y *= a * gs.y, g.z *= a * gs.z, g.w *= a * gs.w;
    u.x *= a * us.x, u.y *= a * us.y, u.z *= a * us.z, u.w *= a * us.w;
  }
  return {g.x / (1.f + expf(-g.x)) * u.x, g.y / (1.f + expf(-g.y)) * u.y,
          g.z / (1.f + expf(-g.z)) * u.z, g.w / (1.f + expf(-g.w)) * u.w};
}

// The same for columns c of rows g4, u4.
__device__ __forceinline__ float4 silu_mul4(const float4* g4, const float4* u4, int64_t c,
                                            const float* xs, const float4* gs4, const float4* us4) {
  return silu_mul4_of(g4[c], u4[c], c, xs, gs4, us4);
}

__global__ void silu_mul_quantize_kernel(const float* __restrict__ gate,
                                         const float* __restrict__ up, const float* x_scale,
                                         const float* __restrict__ g_scale,
                                         const float* __restrict__ u_scale, int64_t f,
                                         uint8_t* __restrict__ q, float* scale) {
  const int64_t f4 = f / 4;
  const auto* g4 = reinterpret_cast<const float4*>(gate + blockIdx.x * f);
  const auto* u4 = reinterpret_cast<const float4*>(up + blockIdx.x * f);
  const auto* gs4 = reinterpret_cast<const float4*>(g_scale);
  const auto* us4 = reinterpret_cast<const float4*>(u_scale);
  float xs_v = 0.f;
  if (x_scale) xs_v = x_scale[blockIdx.x];  // read by every thread before block_max's barriers
  const float* xs = x_scale ? &xs_v : nullptr;
  float m = 0.f;
  for (int64_t c = threadIdx.x; c < f4; c += blockDim.x) {
    m = fmaxf(m, absmax4(silu_mul4(g4, u4, c, xs, gs4, us4)));
  }
  m = block_max(m);
  const float s = m > 0.f ? m / kFp8E4M3Max : 1.f;
  const float inv = 1.f / s;
  auto* out = reinterpret_cast<uint32_t*>(q + blockIdx.x * f);
  for (int64_t c = threadIdx.x; c < f4; c += blockDim.x) {
    out[c] = e4m3x4(silu_mul4(g4, u4, c, xs, gs4, us4), inv);
  }
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

// silu_mul_quantize_kernel with each thread's SiLU·up values held in registers (f / 4 <= kPer *
// blockDim.x): gate and up read once with every load in flight, SiLU computed once.
template <int kPer>
__global__ void silu_mul_quantize_regs_kernel(const float* __restrict__ gate,
                                              const float* __restrict__ up, const float* x_scale,
                                              const float* __restrict__ g_scale,
                                              const float* __restrict__ u_scale, int64_t f,
                                              uint8_t* __restrict__ q, float* scale) {
  const int64_t f4 = f / 4;
  const auto* g4 = reinterpret_cast<const float4*>(gate + blockIdx.x * f);
  const auto* u4 = reinterpret_cast<const float4*>(up + blockIdx.x * f);
  const auto* gs4 = reinterpret_cast<const float4*>(g_scale);
  const auto* us4 = reinterpret_cast<const float4*>(u_scale);
  float xs_v = 0.f;
  if (x_scale) xs_v = x_scale[blockIdx.x];  // read by every thread before block_max's barriers
  const float* xs = x_scale ? &xs_v : nullptr;
  float4 v[kPer], u[kPer];  // gate and up's raw values, then v the SiLU·up values
  const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
  for (int e = 0; e < kPer; ++e) {  // every load issued before any is used
    const int64_t c = threadIdx.x + int64_t{e} * blockDim.x;
    v[e] = c < f4 ? g4[c] : zero;
    u[e] = c < f4 ? u4[c] : zero;
  }
  float m = 0.f;
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int64_t c = threadIdx.x + int64_t{e} * blockDim.x;
    v[e] = c < f4 ? silu_mul4_of(v[e], u[e], c, xs, gs4, us4) : zero;
    m = fmaxf(m, absmax4(v[e]));
  }
  m = block_max(m);
  const float s = m > 0.f ? m / kFp8E4M3Max : 1.f;
  const float inv = 1.f / s;
  auto* out = reinterpret_cast<uint32_t*>(q + blockIdx.x * f);
#pragma unroll
  for (int e = 0; e < kPer; ++e) {
    const int64_t c = threadIdx.x + int64_t{e} * blockDim.x;
    if (c < f4) out[c] = e4m3x4(v[e], inv);
  }
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

constexpr int kNormPer = 16;  // elements per thread of norm_quantize_regs_kernel
constexpr int kSiluPer = 8;   // float4s per thread of silu_mul_quantize_regs_kernel
constexpr int kSiluThreads = 512;

unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)));
}

}  // namespace

void quantize_rows_fp8(const uint16_t* w, int64_t k, int64_t n, uint8_t* q, float* scale,
                       cudaStream_t stream) {
  if (n == 0) return;
  quantize_rows_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(w, k, q, scale);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void quantize_activations_fp8(const float* x, int64_t rows, int64_t k, uint8_t* q, float* scale,
                              cudaStream_t stream) {
  if (rows == 0) return;
  const bool aligned =
      reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(q) % 4 == 0;
  if (k % 4 == 0 && aligned) {
    quantize_rows4_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, k, q, scale);
  } else {
    quantize_rows_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, k, q, scale);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void norm_quantize_fp8(float* x, const float* residual, const float* w, int64_t rows, int64_t dim,
                       float eps, uint8_t* q, float* scale, cudaStream_t stream) {
  if (rows == 0) return;
  const int threads = rms_norm_threads(dim);
  if (dim <= int64_t{kNormPer} * threads) {
    norm_quantize_regs_kernel<kNormPer>
        <<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, residual, w, dim, eps, q, scale);
  } else {
    norm_quantize_kernel<<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, residual, w, dim,
                                                                              eps, q, scale);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void silu_mul_quantize_fp8(const float* gate, const float* up, const float* x_scale,
                           const float* g_scale, const float* u_scale, int64_t rows, int64_t f,
                           uint8_t* q, float* scale, cudaStream_t stream) {
  if (rows == 0) return;
  if (f / 4 <= int64_t{kSiluPer} * kSiluThreads) {
    silu_mul_quantize_regs_kernel<kSiluPer>
        <<<static_cast<unsigned>(rows), kSiluThreads, 0, stream>>>(gate, up, x_scale, g_scale,
                                                                   u_scale, f, q, scale);
  } else {
    silu_mul_quantize_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        gate, up, x_scale, g_scale, u_scale, f, q, scale);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void dequantize_rows_fp8(const uint8_t* q, const float* scale, int64_t k, int64_t n, uint16_t* out,
                         cudaStream_t stream) {
  if (n * k == 0) return;
  dequantize_rows_kernel<<<grid_for(n * k), kThreads, 0, stream>>>(q, scale, k, n, out);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void scale_fp8_product(float* y, int64_t tokens, int64_t n, const float* x_scale,
                       const float* w_scale, cudaStream_t stream, float* sum) {
  if (tokens * n == 0) return;
  const bool aligned = reinterpret_cast<uintptr_t>(y) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(w_scale) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(sum) % 16 == 0;
  if (n % 4 == 0 && aligned) {
    const dim3 grid(static_cast<unsigned>((n / 4 + kThreads - 1) / kThreads),
                    static_cast<unsigned>(std::min<int64_t>(tokens, 65535)));
    scale_product_kernel<<<grid, kThreads, 0, stream>>>(y, tokens, n, x_scale, w_scale, sum);
  } else {
    scale_product_any_kernel<<<grid_for(tokens * n), kThreads, 0, stream>>>(y, tokens, n, x_scale,
                                                                            w_scale, sum);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
