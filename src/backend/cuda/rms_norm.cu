// RMSNorm kernel: one block per row; the sum of squares is reduced across the block in fp32.
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/reduce.cuh"
#include "backend/cuda/rms_norm.cuh"

namespace shardlm::cuda {

namespace {
__global__ void rms_norm_kernel(const float* x, const float* w, int64_t dim, float eps,
                                float* out) {
  const float* xr = x + blockIdx.x * dim;
  float* outr = out + blockIdx.x * dim;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) sum += xr[i] * xr[i];
  sum = block_sum(sum);
  const float scale = 1.f / sqrtf(sum / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) outr[i] = xr[i] * scale * w[i];
}
}  // namespace

void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out,
              cudaStream_t stream) {
  if (rows == 0) return;
  const int threads = dim >= 1024 ? 512 : dim >= 256 ? 256 : 64;
  rms_norm_kernel<<<static_cast<unsigned>(rows), threads, 0, stream>>>(x, w, dim, eps, out);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
