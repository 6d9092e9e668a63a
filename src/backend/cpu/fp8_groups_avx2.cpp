// AVX2 twin of fp8_group_row_to_bf16 (backend/cpu/fp8_groups.h): 16 codes at a time moved into
// FP16 bit patterns and widened by F16C, times their group's scale, rounded to BF16 to nearest
// even as core/fp16.h's fp32_to_bf16 rounds (bit for bit the same as the scalar path through
// e4m3_values).
#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/fp8_groups.h"
#include "core/fp16.h"
#include "core/fp8.h"

#define SHARDLM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace shardlm::cpu {

namespace {

// fp32_to_bf16 on 8 lanes: the BF16 bits in the low half of each 32-bit lane.
SHARDLM_AVX2 inline __m256i to_bf16(__m256 f) {
  const __m256i x = _mm256_castps_si256(f);
  const __m256i mag = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}

}  // namespace

// 16 E4M3 codes as FP16 bits of their value times 2^-8 (exact: sign to bit 15, exponent and
// mantissa moved up 7 bits; E4M3's bias 7 against FP16's 15), for F16C to widen.
SHARDLM_AVX2 inline __m256i e4m3x16_to_half(__m256i x) {
  const __m256i sign = _mm256_slli_epi16(_mm256_and_si256(x, _mm256_set1_epi16(0x80)), 8);
  const __m256i mag = _mm256_slli_epi16(_mm256_and_si256(x, _mm256_set1_epi16(0x7f)), 7);
  return _mm256_or_si256(sign, mag);
}

SHARDLM_AVX2 void fp8_group_row_to_bf16_avx2(const uint8_t* row, int64_t k, uint16_t* out) {
  const float* scales = fp8_group_scales(row, k);
  const __m256i low7 = _mm256_set1_epi16(0x7f), quiet_nan = _mm256_set1_epi16(0x7fc0);
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {  // 16 columns never straddle a group of 128
    // (value * 2^-8) * (scale * 2^8): both factors exact, so one rounding of value * scale, as
    // the scalar path's product rounds it.
    const __m256 s = _mm256_set1_ps(scales[i / kFp8GroupCols] * 256.f);
    const __m256i x =
        _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)));
    const __m256i h = e4m3x16_to_half(x);
    const __m256 lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    const __m256 hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
    const __m256i packed = _mm256_permute4x64_epi64(
        _mm256_packus_epi32(to_bf16(_mm256_mul_ps(lo, s)), to_bf16(_mm256_mul_ps(hi, s))), 0xD8);
    // E4M3's NaN codes (0x7f, 0xff) as e4m3_values' NaN gives them.
    const __m256i nan = _mm256_cmpeq_epi16(_mm256_and_si256(x, low7), low7);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm256_blendv_epi8(packed, quiet_nan, nan));
  }
  if (i < k) {  // the last k % 16 columns (one group's tail)
    const float s = scales[i / kFp8GroupCols];
    const float* lut = e4m3_values();
    for (; i < k; ++i) out[i] = fp32_to_bf16(lut[row[i]] * s);
  }
}

}  // namespace shardlm::cpu
#endif
