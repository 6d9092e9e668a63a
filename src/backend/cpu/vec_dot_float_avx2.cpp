// AVX2 instantiation of the float-activation gemms (vec_dot_float_impl.h): F32, F16, BF16 and
// F8_E4M3_G128 weights, 8 lanes.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "backend/cpu/vec_dot_avx2.h"
#include "backend/cpu/vec_dot_avx2_tiled.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::cpu {
namespace {
#define SHARDLM_F_TARGET SHARDLM_AVX2
#define SHARDLM_F_WIDE 0
#include "backend/cpu/vec_dot_float_impl.h"
}  // namespace

GemmFn avx2_gemm_float(DType t) {
  switch (t) {
    case DType::F32:
      return gemm_tiled<F32Tile, 4, 3>;
    case DType::F16:
      return gemm_tiled<F16Tile, 4, 3>;
    case DType::BF16:
      return gemm_tiled<BF16Tile, 4, 3>;
    case DType::F8_E4M3_G128:
      return gemm_fp8_groups<4, 3>;
    default:
      return nullptr;
  }
}

}  // namespace shardlm::cpu
#endif
