// AVX2 twin of fp8_group_row_to_bf16 (backend/cpu/fp8_groups.h): 16 codes at a time through a
// gathered table of E4M3 values, times their group's scale, rounded to BF16 to nearest even (NaN
// kept quiet) as core/fp16.h's fp32_to_bf16 rounds.
#if defined(__x86_64__)
#include <immintrin.h>

#include <array>

#include "backend/cpu/fp8_groups.h"
#include "core/fp16.h"
#include "core/fp8.h"

#define SHARDLM_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace shardlm::cpu {

namespace {

struct alignas(32) E4m3Table {
  std::array<float, 256> v;
  E4m3Table() {
    for (int c = 0; c < 256; ++c)
      v[static_cast<size_t>(c)] = e4m3_to_float(static_cast<uint8_t>(c));
  }
};

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

SHARDLM_AVX2 void fp8_group_row_to_bf16_avx2(const uint8_t* row, int64_t k, uint16_t* out) {
  static const E4m3Table table;
  const float* lut = table.v.data();
  const float* scales = fp8_group_scales(row, k);
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {  // 16 columns never straddle a group of 128
    const __m256 s = _mm256_set1_ps(scales[i / kFp8GroupCols]);
    const __m128i codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i));
    const __m256 lo = _mm256_i32gather_ps(lut, _mm256_cvtepu8_epi32(codes), 4);
    const __m256 hi = _mm256_i32gather_ps(lut, _mm256_cvtepu8_epi32(_mm_srli_si128(codes, 8)), 4);
    const __m256i packed =
        _mm256_packus_epi32(to_bf16(_mm256_mul_ps(lo, s)), to_bf16(_mm256_mul_ps(hi, s)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm256_permute4x64_epi64(packed, 0xD8));
  }
  if (i < k) {  // the last k % 16 columns (one group's tail)
    const float s = scales[i / kFp8GroupCols];
    for (; i < k; ++i) out[i] = fp32_to_bf16(lut[row[i]] * s);
  }
}

}  // namespace shardlm::cpu
#endif
