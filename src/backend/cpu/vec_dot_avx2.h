// Internal: AVX2 kernels defined outside vec_dot_avx2.cpp (x86-64 only).
#pragma once

#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {

GemmFn avx2_gemm_q4_0();
GemmFn avx2_gemm_q4_1();
GemmFn avx2_gemm_q8_0();
// F32, F16, BF16 and F8_E4M3_G128 weights x fp32 activations (vec_dot_float_avx2.cpp); nullptr
// for other types.
GemmFn avx2_gemm_float(DType t);
// AVX2 twin of quantize_act_q8a (bit-identical output).
void quantize_act_q8a_avx2(const float* x, void* dst, int64_t k);

}  // namespace shardlm::cpu
