// Internal: AVX2 kernels defined outside vec_dot_avx2.cpp (x86-64 only).
#pragma once

#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {

GemmFn avx2_gemm_q4_0();
GemmFn avx2_gemm_q4_1();
GemmFn avx2_gemm_q8_0();

}  // namespace shardlm::cpu
