// FP8 quantisation kernels: one block per row for the absolute maximum (the scale), then the
// conversion with E4M3's round-to-nearest-even and saturation (cuda_fp8.h), four elements per
// access for fp32 rows of k % 4 == 0; a grid-stride loop for the element-wise dequantisation; the
// GEMM epilogue by rows, four columns per thread (element-wise where n % 4 != 0).
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/reduce.cuh"

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
__global__ void scale_product_kernel(float* __restrict__ y, int64_t tokens, int64_t n,
                                     const float* __restrict__ x_scale,
                                     const float* __restrict__ w_scale) {
  const int64_t n4 = n / 4;
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= n4) return;
  const float4 w = reinterpret_cast<const float4*>(w_scale)[c];
  for (int64_t t = blockIdx.y; t < tokens; t += gridDim.y) {
    const float xs = x_scale[t];
    float4* row = reinterpret_cast<float4*>(y + t * n);
    float4 v = row[c];
    v.x *= xs * w.x;
    v.y *= xs * w.y;
    v.z *= xs * w.z;
    v.w *= xs * w.w;
    row[c] = v;
  }
}

// Any n: the element-wise form.
__global__ void scale_product_any_kernel(float* y, int64_t tokens, int64_t n,
                                         const float* __restrict__ x_scale,
                                         const float* __restrict__ w_scale) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < tokens * n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] *= x_scale[i / n] * w_scale[i % n];
}

// Block b quantises fp32 row b of x, four elements per load and store: k % 4 == 0.
__global__ void quantize_rows4_kernel(const float* __restrict__ x, int64_t k,
                                      uint8_t* __restrict__ q, float* __restrict__ scale) {
  const float4* row = reinterpret_cast<const float4*>(x + blockIdx.x * k);
  const int64_t k4 = k / 4;
  float m = 0.f;
  for (int64_t i = threadIdx.x; i < k4; i += blockDim.x) {
    const float4 v = row[i];
    m = fmaxf(m, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
  }
  m = block_max(m);
  const float s = m > 0.f ? m / kFp8E4M3Max : 1.f;
  const float inv = 1.f / s;
  uint32_t* out = reinterpret_cast<uint32_t*>(q + blockIdx.x * k);
  for (int64_t i = threadIdx.x; i < k4; i += blockDim.x) {
    const float4 v = row[i];
    out[i] = uint32_t{to_e4m3(v.x * inv)} | (uint32_t{to_e4m3(v.y * inv)} << 8) |
             (uint32_t{to_e4m3(v.z * inv)} << 16) | (uint32_t{to_e4m3(v.w * inv)} << 24);
  }
  if (threadIdx.x == 0) scale[blockIdx.x] = s;
}

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

void dequantize_rows_fp8(const uint8_t* q, const float* scale, int64_t k, int64_t n, uint16_t* out,
                         cudaStream_t stream) {
  if (n * k == 0) return;
  dequantize_rows_kernel<<<grid_for(n * k), kThreads, 0, stream>>>(q, scale, k, n, out);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void scale_fp8_product(float* y, int64_t tokens, int64_t n, const float* x_scale,
                       const float* w_scale, cudaStream_t stream) {
  if (tokens * n == 0) return;
  const bool aligned =
      reinterpret_cast<uintptr_t>(y) % 16 == 0 && reinterpret_cast<uintptr_t>(w_scale) % 16 == 0;
  if (n % 4 == 0 && aligned) {
    const dim3 grid(static_cast<unsigned>((n / 4 + kThreads - 1) / kThreads),
                    static_cast<unsigned>(std::min<int64_t>(tokens, 65535)));
    scale_product_kernel<<<grid, kThreads, 0, stream>>>(y, tokens, n, x_scale, w_scale);
  } else {
    scale_product_any_kernel<<<grid_for(tokens * n), kThreads, 0, stream>>>(y, tokens, n, x_scale,
                                                                            w_scale);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
