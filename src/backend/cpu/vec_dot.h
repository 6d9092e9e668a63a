// The CPU matmul kernel table: activation formats (8-bit blocks the activations are quantised to
// once per matmul), and per instruction set a quantiser plus a tiled "gemm" kernel per weight type.
// matmul.cpp picks the instruction set once at run time; tests call any supported one directly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace shardlm::cpu {

// Activations for 32-element weight blocks (Q8_0, Q4_0, Q4_1): x ~= d * qs. A row of k elements
// is k/32 blocks followed by k/32 floats s_b = d_b * sum(qs_b) (contiguous, so the min term of
// Q4_1 and the -8 offset of Q4_0 vectorise over blocks): 40 bytes per 32 elements.
struct BlockQ8A {
  float d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8A) == 36);
inline const float* q8a_sums(const void* row, int64_t nb) {
  return reinterpret_cast<const float*>(static_cast<const BlockQ8A*>(row) + nb);
}

// Activations for 256-element K-quant weight blocks: bsums[j] = sum of qs[16j .. 16j+15].
struct BlockQ8K {
  float d;
  int16_t bsums[16];
  int8_t qs[256];
};
static_assert(sizeof(BlockQ8K) == 292);

enum class CpuIsa { Scalar, Avx2, Avx512 };
const char* cpu_isa_name(CpuIsa isa);
bool cpu_isa_supported(CpuIsa isa);
// The best supported ISA, or the one SHARDLM_CPU_ISA names (scalar|avx2|avx512); decided once.
CpuIsa active_cpu_isa();

// Bytes one activation row of k elements takes in the format weights of type t use
// (k * 4 for float weights, whose activations stay fp32).
size_t act_row_bytes(DType t, int64_t k);

// Quantises one activation row of k floats into the format for weight type t (no-op for float
// weights: the kernel reads x directly).
using QuantizeActFn = void (*)(const float* x, void* dst, int64_t k);
// y[t * ldy + r] = dot(weight row r, activation row t) for r < nr, t < nt. Weight rows are
// w_stride bytes apart, activation rows a_stride bytes apart; k is the row length.
using GemmFn = void (*)(int64_t k, const uint8_t* w, size_t w_stride, const uint8_t* a,
                        size_t a_stride, float* y, int64_t ldy, int64_t nr, int64_t nt);

struct CpuKernels {
  QuantizeActFn quantize = nullptr;  // nullptr: activations are used as fp32
  GemmFn gemm = nullptr;
  int tile_rows = 1;  // the kernel's natural row tile; work splits are multiples of it
};

// Kernels for weight type t on isa (isa must be supported); falls back to the next lower ISA for
// types an ISA has no kernel for. gemm is nullptr for types with no matmul (I32).
CpuKernels cpu_kernels(DType t, CpuIsa isa);

// Per-ISA tables (return false where that ISA has no kernel for t).
bool scalar_kernels(DType t, CpuKernels* out);
bool avx2_kernels(DType t, CpuKernels* out);
bool avx512_kernels(DType t, CpuKernels* out);

// Reference activation quantisers (also used by the SIMD tables where speed does not matter).
void quantize_act_q8a(const float* x, void* dst, int64_t k);
void quantize_act_q8k(const float* x, void* dst, int64_t k);

}  // namespace shardlm::cpu
