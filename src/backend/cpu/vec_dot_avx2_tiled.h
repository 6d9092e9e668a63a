// Internal to the AVX2 kernels (x86-64 builds): the target attribute, a horizontal sum, and the
// tiling every float-activation gemm shares, for the kernels of vec_dot_avx2.cpp and the files
// beside it.
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

SHARDLM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The float-weight tiles' inner loop: acc[r][t] += weights x activations over columns [i0, i1) (a
// multiple of 8 apart), the weights of row r at w + r * ws decoded 8 at a time by
// Load::load8(row, i) and the fp32 activations of token t at a + t * as.
template <class Load, int RM, int RN>
SHARDLM_AVX2 inline void fma_tile(__m256 (&acc)[RM][RN], int64_t i0, int64_t i1, const uint8_t* w,
                                  size_t ws, const uint8_t* a, size_t as) {
  for (int64_t i = i0; i < i1; i += 8) {
    for (int r = 0; r < RM; ++r) {
      const __m256 wv = Load::load8(w + r * ws, i);
      for (int t = 0; t < RN; ++t) {
        const __m256 xv = _mm256_loadu_ps(reinterpret_cast<const float*>(a + t * as) + i);
        acc[r][t] = _mm256_fmadd_ps(wv, xv, acc[r][t]);
      }
    }
  }
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

}  // namespace shardlm::cpu
#endif
