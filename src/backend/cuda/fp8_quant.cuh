// FP8 E4M3 for --quantization fp8 (vLLM/SGLang semantics): weights quantised once at load with one
// scale per output channel (row), activations quantised per token at run time for the FP8 GEMM,
// and the GEMM's epilogue that applies both scales. Values are w ~= q * scale, |q| <= 448 (E4M3's
// largest finite value), rounded to nearest even and saturated. CPU reference: the FP8 tests'
// E4M3 codec (tests/cuda/test_cuda_fp8.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

inline constexpr float kFp8E4M3Max = 448.f;

// q[j][i] = e4m3(w[j][i] / scale[j]), scale[j] = max_i |w[j][i]| / 448 (1 for an all-zero row);
// w: [n][k] bf16 bits; q: [n][k] bytes; scale: [n] fp32.
void quantize_rows_fp8(const uint16_t* w, int64_t k, int64_t n, uint8_t* q, float* scale,
                       cudaStream_t stream);

// The same per row of fp32 activations (dynamic per-token scales): x: [rows][k]; q: [rows][k];
// scale: [rows].
void quantize_activations_fp8(const float* x, int64_t rows, int64_t k, uint8_t* q, float* scale,
                              cudaStream_t stream);

// rms_norm (add_rms_norm where residual is given: x += residual first) straight into the FP8
// GEMM's input: q[r] = e4m3(normed row / scale[r]) as quantize_activations_fp8 would give for the
// fp32 rows rms_norm writes, bit for bit (the same block size and sums); no fp32 rows are written.
void norm_quantize_fp8(float* x, const float* residual, const float* w, int64_t rows, int64_t dim,
                       float eps, uint8_t* q, float* scale, cudaStream_t stream);

// SiLU·up straight into the FP8 GEMM's input: v = silu(g) * u, with g = gate * (x_scale[t] *
// g_scale[j]) and u likewise where x_scale is given (the raw products of the gate and up FP8
// GEMMs; null: gate and up are already scaled), then q and scale as quantize_activations_fp8.
// gate, up: [rows][f] fp32, f % 4 == 0. scale may be x_scale (each row's is read before written).
void silu_mul_quantize_fp8(const float* gate, const float* up, const float* x_scale,
                           const float* g_scale, const float* u_scale, int64_t rows, int64_t f,
                           uint8_t* q, float* scale, cudaStream_t stream);

// out[j][i] = bf16(q[j][i] * scale[j]): FP8 rows back to BF16 (the GEMM's fallback).
void dequantize_rows_fp8(const uint8_t* q, const float* scale, int64_t k, int64_t n, uint16_t* out,
                         cudaStream_t stream);

// y[t][j] *= x_scale[t] * w_scale[j]; y: [tokens][n] (the FP8 GEMM's epilogue). With sum, y is
// left as it is and sum[t][j] += y[t][j] * x_scale[t] * w_scale[j] (a product added to the
// residual stream).
void scale_fp8_product(float* y, int64_t tokens, int64_t n, const float* x_scale,
                       const float* w_scale, cudaStream_t stream, float* sum = nullptr);

}  // namespace shardlm::cuda
