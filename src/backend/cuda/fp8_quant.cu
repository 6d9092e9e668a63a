// FP8 quantisation kernels: one block per row for the absolute maximum (the scale), then the
// conversion with E4M3's round-to-nearest-even and saturation (cuda_fp8.h); grid-stride loops for
// the element-wise dequantisation and the GEMM epilogue.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>

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

__global__ void scale_product_kernel(float* y, int64_t tokens, int64_t n,
                                     const float* __restrict__ x_scale,
                                     const float* __restrict__ w_scale) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < tokens * n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] *= x_scale[i / n] * w_scale[i % n];
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
  quantize_rows_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, k, q, scale);
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
  scale_product_kernel<<<grid_for(tokens * n), kThreads, 0, stream>>>(y, tokens, n, x_scale,
                                                                      w_scale);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
