// The AVX2 matmul on F8_E4M3_G128 weights (core/fp8.h: each row's E4M3 codes, then a scale per 128
// columns) and fp32 activations. Codes become floats in registers (as FP16 bit patterns widened by
// F16C, exact), each (row, token) pair sums its products over a group of 128 columns, and the
// group's scale multiplies the sum once. The results differ from the BF16 copy's in the last bits
// (the BF16 copy rounds code x scale to 8 bits first). NaN codes do not occur here
// (fp8_groups_of leaves matrices with them in BF16).
//
// A batch of a few tokens reads the codes directly: 1 byte a weight against the BF16 copy's 2.
// Larger batches first write 16 rows at a time as their FP16 bit patterns (exact), so that each
// weight's decoding is paid once for all the tokens, not once per 3; the sums are the same, in
// the same order, so a token's outputs do not depend on which way its batch went.
#if defined(__x86_64__)
#include <immintrin.h>

#include <vector>

#include "backend/cpu/vec_dot_avx2.h"
#include "backend/cpu/vec_dot_avx2_tiled.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::cpu {

namespace {

// E4M3 codes as FP16 bit patterns of their values times 2^-8 (exact): the sign moves to bit 15,
// the exponent and mantissa up 7 bits (E4M3's bias 7 against FP16's 15). Sign-extending the byte
// and shifting puts the sign at bit 15 and a copy at bit 14, which the mask clears.
SHARDLM_AVX2 inline __m128i e4m3x8_halves(const uint8_t* codes) {
  const __m128i c = _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes)));
  return _mm_and_si128(_mm_slli_epi16(c, 7), _mm_set1_epi16(-0x4001));
}

// Where the tile reads a row's weights from: the F8_E4M3_G128 row itself (codes), or its FP16 form
// (kWidenRows), laid out the same way: k values, then the scales.
struct FromCodes {
  static constexpr size_t kBytes = 1;
  static constexpr bool kBy16 = true;  // 16 codes decoded at once: fewer instructions a weight
  SHARDLM_AVX2 static __m256 load8(const uint8_t* row, int64_t i) {
    return _mm256_cvtph_ps(e4m3x8_halves(row + i));
  }
  SHARDLM_AVX2 static void load16(const uint8_t* row, int64_t i, __m256* lo, __m256* hi) {
    const __m256i c =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)));
    const __m256i h = _mm256_and_si256(_mm256_slli_epi16(c, 7), _mm256_set1_epi16(-0x4001));
    *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
  }
  static float value(const uint8_t* row, int64_t i) { return e4m3_values()[row[i]]; }
};
struct FromHalves {
  static constexpr size_t kBytes = 2;
  static constexpr bool kBy16 = false;  // two weight registers a row: the 4 x 3 tile would spill
  SHARDLM_AVX2 static __m256 load8(const uint8_t* row, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  }
  static float value(const uint8_t* row, int64_t i) {
    return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]) * 256.f;
  }
};

template <class Src>
inline const float* scales_of(const uint8_t* row, int64_t k) {
  return reinterpret_cast<const float*>(row + Src::kBytes * static_cast<size_t>(k));
}

template <class Src>
struct Fp8GroupTile {
  template <int RM, int RN>
  struct K {
    SHARDLM_AVX2 static void run(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a,
                                 size_t as, float* y, int64_t ldy) {
      __m256 total[RM][RN];
      for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) total[r][t] = _mm256_setzero_ps();
      const int64_t k8 = k / 8 * 8;
      for (int64_t g0 = 0; g0 < k8; g0 += kFp8GroupCols) {
        const int64_t g1 = std::min(g0 + kFp8GroupCols, k8);
        __m256 acc[RM][RN];
        for (int r = 0; r < RM; ++r)
          for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_setzero_ps();
        int64_t i = g0;
        if constexpr (Src::kBy16) {
          for (; i + 16 <= g1; i += 16) {
            for (int r = 0; r < RM; ++r) {
              __m256 lo, hi;
              Src::load16(w + r * ws, i, &lo, &hi);
              for (int t = 0; t < RN; ++t) {  // the order fma_tile's steps of 8 take
                const float* x = reinterpret_cast<const float*>(a + t * as) + i;
                acc[r][t] = _mm256_fmadd_ps(lo, _mm256_loadu_ps(x), acc[r][t]);
                acc[r][t] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(x + 8), acc[r][t]);
              }
            }
          }
        }
        fma_tile<Src, RM, RN>(acc, i, g1, w, ws, a, as);
        for (int r = 0; r < RM; ++r) {
          // The scale times 2^8 undoes the FP16 form's 2^-8 (a power of two: the same product).
          const __m256 s =
              _mm256_set1_ps(scales_of<Src>(w + r * ws, k)[g0 / kFp8GroupCols] * 256.f);
          for (int t = 0; t < RN; ++t) total[r][t] = _mm256_fmadd_ps(acc[r][t], s, total[r][t]);
        }
      }
      for (int t = 0; t < RN; ++t) {
        const float* x = reinterpret_cast<const float*>(a + t * as);
        for (int r = 0; r < RM; ++r) {
          const uint8_t* row = w + r * ws;
          float s = hsum(total[r][t]), tail = 0;
          for (int64_t i = k8; i < k; ++i) tail += Src::value(row, i) * x[i];  // k % 8 columns
          if (k8 < k) s += tail * scales_of<Src>(row, k)[k8 / kFp8GroupCols];
          y[t * ldy + r] = s;
        }
      }
    }
  };
};

template <int RM, int RN>
using CodesTile = Fp8GroupTile<FromCodes>::K<RM, RN>;
template <int RM, int RN>
using HalvesTile = Fp8GroupTile<FromHalves>::K<RM, RN>;

// Batches of at least this many tokens go through the FP16 form, kWidenRows rows at a time (a
// multiple of the row tile, so the tiles are those of the direct path).
constexpr int64_t kWidenTokens = 4, kWidenRows = 16;

// One F8_E4M3_G128 row of k codes in the FP16 form: out gets k FP16 bit patterns, then the scales.
SHARDLM_AVX2 void widen_row(const uint8_t* row, int64_t k, uint8_t* out) {
  auto* halves = reinterpret_cast<uint16_t*>(out);
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(halves + i), e4m3x8_halves(row + i));
  }
  for (; i < k; ++i) {
    const auto c = static_cast<int16_t>(static_cast<int8_t>(row[i]));
    halves[i] = static_cast<uint16_t>((c << 7) & 0xbfff);
  }
  const int64_t groups = (k + kFp8GroupCols - 1) / kFp8GroupCols;
  std::copy_n(fp8_group_scales(row, k), groups, reinterpret_cast<float*>(out + 2 * k));
}

SHARDLM_AVX2 void gemm_fp8_groups(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a,
                                  size_t as, float* y, int64_t ldy, int64_t nr, int64_t nt) {
  if (nt < kWidenTokens) return gemm_tiled<CodesTile, 4, 3>(k, w, ws, a, as, y, ldy, nr, nt);
  const size_t stride = 2 * static_cast<size_t>(k) + 4 * ((k + kFp8GroupCols - 1) / kFp8GroupCols);
  thread_local std::vector<uint8_t> rows;
  if (rows.size() < kWidenRows * stride) rows.resize(kWidenRows * stride);
  for (int64_t r0 = 0; r0 < nr; r0 += kWidenRows) {
    const int64_t n = std::min(kWidenRows, nr - r0);
    for (int64_t r = 0; r < n; ++r) widen_row(w + (r0 + r) * ws, k, rows.data() + r * stride);
    gemm_tiled<HalvesTile, 4, 3>(k, rows.data(), stride, a, as, y + r0, ldy, n, nt);
  }
}

}  // namespace

GemmFn avx2_gemm_fp8_groups() {
  return gemm_fp8_groups;
}

}  // namespace shardlm::cpu
#endif
