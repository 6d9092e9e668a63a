// AVX-512 instantiation of the float-activation gemms (vec_dot_float_impl.h): F32, F16, BF16 and
// F8_E4M3_G128 weights, 16 lanes, and with 32 vector registers a tile of 4 rows x 6 tokens (the
// fastest of 4 x 3, 4 x 4, 4 x 6 and 2 x 6 in bench_matmul and bench offline).
#if defined(__x86_64__)
// GCC 12 warns inside its own avx512fintrin.h (_mm512_undefined_* as an "uninitialized" input of
// the conversions): a false positive of the header, not of this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "backend/cpu/vec_dot_avx2_tiled.h"
#include "backend/cpu/vec_dot_avx512.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::cpu {
namespace {
#define SHARDLM_F_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define SHARDLM_F_WIDE 1
#include "backend/cpu/vec_dot_float_impl.h"
}  // namespace

GemmFn avx512_gemm_float(DType t) {
  switch (t) {
    case DType::F32:
      return gemm_tiled<F32Tile, 4, 6>;
    case DType::F16:
      return gemm_tiled<F16Tile, 4, 6>;
    case DType::BF16:
      return gemm_tiled<BF16Tile, 4, 6>;
    case DType::F8_E4M3_G128:
      return gemm_fp8_groups<4, 6>;
    default:
      return nullptr;
  }
}

}  // namespace shardlm::cpu
#endif
