// AVX2 instantiation of the 32-element block kernels (vec_dot_block32_impl.h).
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "backend/cpu/vec_dot.h"
#include "backend/cpu/vec_dot_avx2.h"

namespace shardlm::cpu {
namespace {
#define SHARDLM_B32_TARGET __attribute__((target("avx2,fma,f16c")))
#define SHARDLM_B32_VNNI 0
#include "backend/cpu/vec_dot_block32_impl.h"
}  // namespace

GemmFn avx2_gemm_q4_0() {
  return gemm<Kind::Q4_0, 4, 2>;
}
GemmFn avx2_gemm_q4_1() {
  return gemm<Kind::Q4_1, 4, 2>;
}
GemmFn avx2_gemm_q8_0() {
  return gemm<Kind::Q8_0, 4, 2>;
}

}  // namespace shardlm::cpu
#endif
