// RMSNorm on the GPU. CPU reference: cpu::rms_norm (backend/cpu/norm.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

// out[r] = x[r] * w / sqrt(mean(x[r]^2) + eps); x, out: [rows][dim] fp32 (out may equal x);
// w: [dim] fp32.
void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* out,
              cudaStream_t stream);

}  // namespace shardlm::cuda
