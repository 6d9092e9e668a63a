// Element-wise kernels: grid-stride loops over flat arrays.
#include <cuda_bf16.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8));
}

__global__ void silu_mul_kernel(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.f + expf(-g)) * up[i];
  }
}

__global__ void silu_mul_bf16_kernel(const float* gate, const float* up, __nv_bfloat16* out,
                                     int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float g = gate[i];
    out[i] = __float2bfloat16_rn(g / (1.f + expf(-g)) * up[i]);
  }
}

// Eight values a thread with 16-byte loads (n a multiple of 8, 16-byte aligned rows).
__global__ void silu_mul_bf16_in_kernel(const uint4* gate, const uint4* up, uint4* out,
                                        int64_t n8) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n8;
       i += int64_t{gridDim.x} * blockDim.x) {
    const uint4 g4 = gate[i], u4 = up[i];
    const auto* g = reinterpret_cast<const __nv_bfloat162*>(&g4);
    const auto* u = reinterpret_cast<const __nv_bfloat162*>(&u4);
    uint4 o4;
    auto* o = reinterpret_cast<__nv_bfloat162*>(&o4);
    for (int j = 0; j < 4; ++j) {
      const float2 gf = __bfloat1622float2(g[j]), uf = __bfloat1622float2(u[j]);
      o[j] = __floats2bfloat162_rn(gf.x / (1.f + expf(-gf.x)) * uf.x,
                                   gf.y / (1.f + expf(-gf.y)) * uf.y);
    }
    out[i] = o4;
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    x[i] += y[i];
}

__global__ void add_bias_kernel(float* x, const float* b, int64_t n, int64_t dim) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    x[i] += b[i % dim];
}

__global__ void gather_rows_kernel(const float* src, const int32_t* rows, int64_t dim, float* dst) {
  const float* s = src + static_cast<int64_t>(rows[blockIdx.x]) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[blockIdx.x * dim + i] = s[i];
}

__global__ void to_bf16_kernel(const float* src, int64_t n, __nv_bfloat16* dst) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}

}  // namespace

void silu_mul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  silu_mul_kernel<<<grid_for(n), kThreads, 0, stream>>>(gate, up, out, n);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void silu_mul_bf16(const float* gate, const float* up, uint16_t* out, int64_t n,
                   cudaStream_t stream) {
  if (n == 0) return;
  silu_mul_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(
      gate, up, reinterpret_cast<__nv_bfloat16*>(out), n);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void silu_mul_bf16_in(const uint16_t* gate, const uint16_t* up, uint16_t* out, int64_t n,
                      cudaStream_t stream) {
  if (n == 0) return;
  const int64_t n8 = n / 8;
  silu_mul_bf16_in_kernel<<<grid_for(n8), kThreads, 0, stream>>>(
      reinterpret_cast<const uint4*>(gate), reinterpret_cast<const uint4*>(up),
      reinterpret_cast<uint4*>(out), n8);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, y, n);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void add_bias(float* x, const float* b, int64_t rows, int64_t dim, cudaStream_t stream) {
  if (rows * dim == 0) return;
  add_bias_kernel<<<grid_for(rows * dim), kThreads, 0, stream>>>(x, b, rows * dim, dim);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void gather_rows(const float* src, const int32_t* rows, int64_t n, int64_t dim, float* dst,
                 cudaStream_t stream) {
  if (n == 0) return;
  gather_rows_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(src, rows, dim, dst);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void to_bf16(const float* src, int64_t n, uint16_t* dst, cudaStream_t stream) {
  if (n == 0) return;
  to_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, n,
                                                       reinterpret_cast<__nv_bfloat16*>(dst));
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
