// AVX-512 kernels: the float-activation types on 512-bit vectors (vec_dot_float_avx512.cpp), and
// the 32-element block types with AVX-512 VNNI (vpdpbusd on 256-bit vectors, one instruction for
// the u8 x s8 dot instead of two). Other types, and CPUs without VNNI, use the AVX2 table.
#include "backend/cpu/vec_dot_avx512.h"

#include "backend/cpu/vec_dot.h"
#include "backend/cpu/vec_dot_avx2.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace shardlm::cpu {
namespace {
#define SHARDLM_B32_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define SHARDLM_B32_VNNI 1
#include "backend/cpu/vec_dot_block32_impl.h"
}  // namespace

bool avx512_kernels(DType t, CpuKernels* out) {
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  if (GemmFn f = avx512_gemm_float(t)) {  // AVX-512F and BW, which CpuIsa::Avx512 means
    *out = {nullptr, f, 4};
    return true;
  }
  if (!vnni) return false;
  switch (t) {
    case DType::Q8_0:
      *out = {quantize_act_q8a_avx2, gemm<Kind::Q8_0, 4, 2>, 4};
      return true;
    case DType::Q4_0:
      *out = {quantize_act_q8a_avx2, gemm<Kind::Q4_0, 4, 2>, 4};
      return true;
    case DType::Q4_1:
      *out = {quantize_act_q8a_avx2, gemm<Kind::Q4_1, 4, 2>, 4};
      return true;
    default:
      return false;
  }
}

}  // namespace shardlm::cpu
#else
namespace shardlm::cpu {
bool avx512_kernels(DType, CpuKernels*) {
  return false;
}
}  // namespace shardlm::cpu
#endif
