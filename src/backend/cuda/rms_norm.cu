// RMSNorm kernel: one block per row; the sum of squares is reduced across the block in fp32.
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/rms_norm.cuh"

namespace shardlm::cuda {

namespace {
// The normed rows go to out (fp32) and/or out_bf16 (a GEMM's input), whichever is not null.
__device__ void write_normed(const float* xr, const float* w, float scale, int64_t dim,
                             int64_t row, float* out, __nv_bfloat16* out_bf16) {
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = xr[i] * scale * w[i];
    if (out) out[row * dim + i] = v;
    if (out_bf16) out_bf16[row * dim + i] = __float2bfloat16_rn(v);
  }
}

__global__ void rms_norm_kernel(const float* x, const float* w, int64_t dim, float eps,
                                float* out, __nv_bfloat16* out_bf16) {
  const float* xr = x + blockIdx.x * dim;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) sum += xr[i] * xr[i];
  sum = block_sum(sum);
  const float scale = 1.f / sqrtf(sum / static_cast<float>(dim) + eps);
  write_normed(xr, w, scale, dim, blockIdx.x, out, out_bf16);
}
// Each thread adds and norms the same elements, so out may alias y.
__global__ void add_rms_norm_kernel(float* x, const float* y, const float* w, int64_t dim,
                                    float eps, float* out, __nv_bfloat16* out_bf16) {
  float* xr = x + blockIdx.x * dim;
  const float* yr = y + blockIdx.x * dim;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = xr[i] + yr[i];
    xr[i] = v;
    sum += v * v;
  }
  sum = block_sum(sum);
  const float scale = 1.f / sqrtf(sum / static_cast<float>(dim) + eps);
  write_normed(xr, w, scale, dim, blockIdx.x, out, out_bf16);
}

}  // namespace

void add_rms_norm(float* x, const float* y, const float* w, int64_t rows, int64_t dim, float eps,
                  float* out, cudaStream_t stream, uint16_t* out_bf16) {
  if (rows == 0) return;
  add_rms_norm_kernel<<<static_cast<unsigned>(rows), rms_norm_threads(dim), 0, stream>>>(
      x, y, w, dim, eps, out, reinterpret_cast<__nv_bfloat16*>(out_bf16));
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out,
              cudaStream_t stream, uint16_t* out_bf16) {
  if (rows == 0) return;
  const int threads = rms_norm_threads(dim);
  rms_norm_kernel<<<static_cast<unsigned>(rows), threads, 0, stream>>>(
      x, w, dim, eps, out, reinterpret_cast<__nv_bfloat16*>(out_bf16));
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
