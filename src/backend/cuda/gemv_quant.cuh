// Kernels over GGUF block-quantised matrices kept quantised on the GPU (quant_layout.h):
//  - gemv_quant: decode-sized batches, y = x W^T by integer dot products (dp4a) of the weight
//    codes with the activations rounded to signed 8-bit codes per 32 elements (the CPU's
//    quantize_act_q8a, value for value: a pass before into a scratch, or in registers for small
//    matrices), scaled per block; a memory-bound pass over the codes;
//  - dequantize_rows: rows to BF16 (a prefill GEMM's weight tile) or fp32 (embedding lookups).
// CPU references: cpu::matmul (the same 8-bit activations) and repacked_row.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace shardlm::cuda {

// A repacked matrix on the device: `type` is the GGUF type it came from (its layout:
// quant_layout(type)), n rows of k elements (k a multiple of 32).
struct QuantMatrix {
  DType type;
  const uint8_t* codes;
  const void* scales;
  const void* offsets;
  int64_t k, n;
};

// Activations rounded for the GEMV: q [n_tokens][k], d and s [n_tokens][k / 32]; a scratch of
// kGemvQuantMaxTokens x the widest k the caller keeps (QuantLinear).
struct QuantActs {
  int8_t* q;
  float* d;
  float* s;
};

inline constexpr int kGemvQuantMaxTokens = 8;

// x [n_tokens][k] to 8-bit codes per 32 elements: code round(x / d), d = max|x| / 127,
// s = d * sum(codes) (the CPU's quantize_act_q8a, value for value).
void quantize_acts(const float* x, int64_t n_tokens, int64_t k, const QuantActs& a,
                   cudaStream_t stream);

// y[t][j] = sum_i w[j][i] * x[t][i] with x quantised to 8-bit codes per 32 elements on the way
// (1 <= n_tokens <= kGemvQuantMaxTokens); x: [n_tokens][w.k] fp32, 16-byte aligned;
// y: [n_tokens][w.n].
void gemv_quant(const QuantMatrix& w, const float* x, int64_t n_tokens, float* y,
                const QuantActs& scratch, cudaStream_t stream);

// Up to kQuantMaxSegments matrices of one type and width over the same activations in one launch
// (Q/K/V): y[i] = x w[i]^T. With gate_up (two matrices of equal shape): y[0] = silu(x w[0]^T) *
// (x w[1]^T), both rows read by one warp; y[1] is not written.
inline constexpr int kQuantMaxSegments = 3;
struct QuantSegments {
  QuantMatrix w[kQuantMaxSegments];
  float* y[kQuantMaxSegments];
  int count;
  bool gate_up;
};
void gemv_quant_segments(const QuantSegments& s, const float* x, int64_t n_tokens,
                         const QuantActs& scratch, cudaStream_t stream);

// Rows r0 .. r0 + n_rows of w as BF16 bits, [n_rows][k].
void dequantize_rows_bf16(const QuantMatrix& w, int64_t r0, int64_t n_rows, uint16_t* out,
                          cudaStream_t stream);

// Rows ids[0 .. n) of w as fp32, [n][k] (the token embedding of a quantised table).
void gather_rows_quant(const QuantMatrix& w, const int32_t* ids, int64_t n, float* out,
                       cudaStream_t stream);

}  // namespace shardlm::cuda
