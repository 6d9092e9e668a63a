// Internal to the x86 kernels (x86-64 builds): the AVX2 target attribute, a horizontal sum, and the
// tiling the gemms of vec_dot_avx2.cpp and vec_dot_float_*.cpp share. In an anonymous namespace, so
// each file gets its own copies: gemm_tiled instantiated with two files' tiles of the same name
// (their alias templates in each file's anonymous namespace) would otherwise be one weak symbol,
// and the linker would keep one file's instructions for both.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#define SHARDLM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace shardlm::cpu {
namespace {

SHARDLM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Dispatches a gemm over row tiles of RM and token tiles of up to RN, with smaller tiles (from a
// table of instantiations) at the edges.
template <template <int, int> class K, int RM, int RN>
SHARDLM_AVX2 void gemm_tiled(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as,
                             float* y, int64_t ldy, int64_t nr, int64_t nt) {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t);
  static constexpr auto table = []<int... I>(std::integer_sequence<int, I...>) {
    return std::array<Fn, RM * RN>{&K<I / RN + 1, I % RN + 1>::run...};
  }
  (std::make_integer_sequence<int, RM * RN>{});
  for (int64_t r = 0; r < nr; r += RM) {
    const int rm = static_cast<int>(std::min<int64_t>(RM, nr - r));
    for (int64_t t = 0; t < nt; t += RN) {
      const int rn = static_cast<int>(std::min<int64_t>(RN, nt - t));
      table[(rm - 1) * RN + (rn - 1)](k, w + r * ws, ws, a + t * as, as, y + t * ldy + r, ldy);
    }
  }
}

}  // namespace
}  // namespace shardlm::cpu
#endif
