// RMSNorm on the GPU. CPU reference: cpu::rms_norm (backend/cpu/norm.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

// The block size of the norm kernels (one block per row): also what a fused norm elsewhere uses,
// so that its sums of squares, and so its rows, are the same bit for bit (gemv_staged.cuh's
// rms_norm_sum follows it on the device).
__host__ __device__ inline int rms_norm_threads(int64_t dim) {
  return dim >= 1024 ? 512 : dim >= 256 ? 256 : 64;
}

// out[r] = x[r] * w / sqrt(mean(x[r]^2) + eps); x, out: [rows][dim] fp32 (out may equal x);
// w: [dim] fp32. With out_bf16 the rows also go there rounded to BF16 (a GEMM's input); out may
// then be null.
void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out,
              cudaStream_t stream, uint16_t* out_bf16 = nullptr);

// x[r] += y[r], then out[r] = rms_norm(x[r]) * w (residual add fused with the next norm); out
// may equal y; out_bf16 as for rms_norm. CPU reference: Backend::add_rms_norm's default (add,
// then rms_norm).
void add_rms_norm(float* x, const float* y, const float* w, int64_t rows, int64_t dim, float eps,
                  float* out, cudaStream_t stream, uint16_t* out_bf16 = nullptr);

}  // namespace shardlm::cuda
