// Element-wise kernels on the GPU: SiLU-gated product, residual add, bias add, row gather and the
// fp32 -> bf16 conversion that feeds the GEMMs. CPU references: backend/cpu/elementwise.cpp and
// CpuBackend::gather_rows; to_bf16 rounds to nearest even like fp32_to_bf16 (core/fp16.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

// out[i] = silu(gate[i]) * up[i] for i < n.
void silu_mul(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream);
// The same rounded to BF16 (the down projection's GEMM input).
void silu_mul_bf16(const float* gate, const float* up, uint16_t* out, int64_t n,
                   cudaStream_t stream);
// The same on BF16 gate and up (n a multiple of 8; 16-byte aligned buffers).
void silu_mul_bf16_in(const uint16_t* gate, const uint16_t* up, uint16_t* out, int64_t n,
                      cudaStream_t stream);
// x[i] += y[i] for i < n.
void add(float* x, const float* y, int64_t n, cudaStream_t stream);
// x[r][j] += b[j]; x: [rows][dim], b: [dim].
void add_bias(float* x, const float* b, int64_t rows, int64_t dim, cudaStream_t stream);
// dst[i] = src[rows[i]]; rows of dim floats; rows: [n] device.
void gather_rows(const float* src, const int32_t* rows, int64_t n, int64_t dim, float* dst,
                 cudaStream_t stream);
// dst[i] = bf16(src[i]) (bits) for i < n.
void to_bf16(const float* src, int64_t n, uint16_t* dst, cudaStream_t stream);

}  // namespace shardlm::cuda
