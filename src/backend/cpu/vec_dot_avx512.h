// Internal: AVX-512 kernels defined outside vec_dot_avx512.cpp (x86-64 only).
#pragma once

#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {

// F32, F16, BF16 and F8_E4M3_G128 weights x fp32 activations (vec_dot_float_avx512.cpp; AVX-512F
// and BW); nullptr for other types.
GemmFn avx512_gemm_float(DType t);

}  // namespace shardlm::cpu
