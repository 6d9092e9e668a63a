// AVX2 + FMA + F16C kernels (compiled for those instructions only here, chosen at run time).
// Each gemm tiles RM weight rows x RN tokens: a weight block is unpacked once for RN tokens and an
// activation block loaded once for RM rows; per (row, token) pair the integer dot is maddubs +
// madd.
#if defined(__x86_64__)
#include "backend/cpu/vec_dot_avx2.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <utility>

#include "backend/cpu/vec_dot.h"
#include "backend/cpu/vec_dot_avx2_tiled.h"
#include "core/fp16.h"

namespace shardlm::cpu {

namespace {

SHARDLM_AVX2 inline float h2f(uint16_t h) {
  return _cvtsh_ss(h);
}

// ---- Q4_K / Q5_K x Q8K ------------------------------------------------------------------------
// Unpacks the 8 six-bit (scale, min) pairs, four bytes at a time: scales 0-3 and mins 0-3 are the
// low 6 bits of words 0 and 1; scales 4-7 are the nibbles of word 2 with the top 2 bits of word 0,
// mins 4-7 the high nibbles of word 2 with the top 2 bits of word 1. Scales as int16 (broadcast
// straight from memory), mins as bytes.
inline void k4_scales(const uint8_t* s, int16_t* sc, uint8_t* m) {
  uint32_t w[3];
  std::memcpy(w, s, 12);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const uint32_t sc03 = w[0] & lo6, m03 = w[1] & lo6;
  const uint32_t sc47 = (w[2] & lo4) | (((w[0] >> 6) & lo2) << 4);
  const uint32_t m47 = ((w[2] >> 4) & lo4) | (((w[1] >> 6) & lo2) << 4);
  for (int j = 0; j < 4; ++j) {
    sc[j] = static_cast<int16_t>((sc03 >> (8 * j)) & 0xff);
    sc[j + 4] = static_cast<int16_t>((sc47 >> (8 * j)) & 0xff);
  }
  std::memcpy(m, &m03, 4);
  std::memcpy(m + 4, &m47, 4);
}

// Pairs of 16-element activation sums -> 8 sums of 32 (one per K-quant sub-block), as int16.
SHARDLM_AVX2 inline __m128i q8k_sums32(const BlockQ8K* ab) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ab->bsums));
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ab->bsums + 8));
  return _mm_hadd_epi16(lo, hi);
}

template <bool kQ5>
struct Q45KTile {
  template <int RM, int RN>
  struct K {
    SHARDLM_AVX2 static void run(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a,
                                 size_t as, float* y, int64_t ldy) {
      using Block = std::conditional_t<kQ5, BlockQ5_K, BlockQ4_K>;
      __m256 acc[RM][RN];
      for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_setzero_ps();
      const __m256i m4 = _mm256_set1_epi8(0x0F);
      const int64_t nb = k / 256;
      for (int64_t b = 0; b < nb; ++b) {
        __m256i isum[RM][RN];
        for (int r = 0; r < RM; ++r)
          for (int t = 0; t < RN; ++t) isum[r][t] = _mm256_setzero_si256();
        alignas(16) int16_t sc[RM][8];
        alignas(16) uint8_t mn[RM][8];
        for (int r = 0; r < RM; ++r) {
          const Block* wb = reinterpret_cast<const Block*>(w + r * ws) + b;
          k4_scales(wb->scales, sc[r], mn[r]);
        }
        for (int c = 0; c < 4; ++c) {
          for (int r = 0; r < RM; ++r) {
            const Block* wb = reinterpret_cast<const Block*>(w + r * ws) + b;
            const __m256i raw =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->qs + 32 * c));
            __m256i lo = _mm256_and_si256(raw, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            if constexpr (kQ5) {
              const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->qh));
              const __m256i one = _mm256_set1_epi8(1);
              lo = _mm256_or_si256(
                  lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4));
              hi = _mm256_or_si256(
                  hi,
                  _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4));
            }
            const __m256i s0 = _mm256_set1_epi16(sc[r][2 * c]);
            const __m256i s1 = _mm256_set1_epi16(sc[r][2 * c + 1]);
            for (int t = 0; t < RN; ++t) {
              const BlockQ8K* ab = reinterpret_cast<const BlockQ8K*>(a + t * as) + b;
              const __m256i a0 =
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab->qs + 64 * c));
              const __m256i a1 =
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab->qs + 64 * c + 32));
              const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), s0);
              const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), s1);
              isum[r][t] = _mm256_add_epi32(isum[r][t], _mm256_add_epi32(p0, p1));
            }
          }
        }
        for (int r = 0; r < RM; ++r) {
          const Block* wb = reinterpret_cast<const Block*>(w + r * ws) + b;
          const float d = h2f(wb->d), dmin = h2f(wb->dmin);
          const __m128i m16 =
              _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mn[r])));
          for (int t = 0; t < RN; ++t) {
            const BlockQ8K* ab = reinterpret_cast<const BlockQ8K*>(a + t * as) + b;
            const __m128 fm = _mm_cvtepi32_ps(_mm_madd_epi16(m16, q8k_sums32(ab)));
            acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][t]), _mm256_set1_ps(d * ab->d),
                                        acc[r][t]);
            acc[r][t] = _mm256_fnmadd_ps(_mm256_zextps128_ps256(fm), _mm256_set1_ps(dmin * ab->d),
                                         acc[r][t]);
          }
        }
      }
      for (int t = 0; t < RN; ++t)
        for (int r = 0; r < RM; ++r) y[t * ldy + r] = hsum(acc[r][t]);
    }
  };
};
template <int RM, int RN>
using Q4_KTile = Q45KTile<false>::K<RM, RN>;
template <int RM, int RN>
using Q5_KTile = Q45KTile<true>::K<RM, RN>;

// ---- Q6_K x Q8K: unsigned 6-bit q (0..63) and a -32 * scale * bsum correction per 16 ----------
template <int RM, int RN>
struct Q6_KTile {
  SHARDLM_AVX2 static void run(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as,
                               float* y, int64_t ldy) {
    __m256 acc[RM][RN];
    for (int r = 0; r < RM; ++r)
      for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    const int64_t nb = k / 256;
    for (int64_t b = 0; b < nb; ++b) {
      __m256i isum[RM][RN];
      for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) isum[r][t] = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        for (int r = 0; r < RM; ++r) {
          const BlockQ6_K* wb = reinterpret_cast<const BlockQ6_K*>(w + r * ws) + b;
          const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->ql + 64 * h));
          const __m256i l1 =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->ql + 64 * h + 32));
          const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->qh + 32 * h));
          __m256i q[4];
          q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                 _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
          q[1] =
              _mm256_or_si256(_mm256_and_si256(l1, m4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
          q[2] =
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
          q[3] =
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
          const int8_t* sc = wb->scales + 8 * h;
          for (int g = 0; g < 4; ++g) {
            const __m256i s =
                _mm256_set_m128i(_mm_set1_epi16(sc[2 * g + 1]), _mm_set1_epi16(sc[2 * g]));
            for (int t = 0; t < RN; ++t) {
              const BlockQ8K* ab = reinterpret_cast<const BlockQ8K*>(a + t * as) + b;
              const __m256i av =
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab->qs + 128 * h + 32 * g));
              isum[r][t] = _mm256_add_epi32(isum[r][t],
                                            _mm256_madd_epi16(_mm256_maddubs_epi16(q[g], av), s));
            }
          }
        }
      }
      for (int r = 0; r < RM; ++r) {
        const BlockQ6_K* wb = reinterpret_cast<const BlockQ6_K*>(w + r * ws) + b;
        const __m256i sc16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb->scales)));
        const float d = h2f(wb->d);
        for (int t = 0; t < RN; ++t) {
          const BlockQ8K* ab = reinterpret_cast<const BlockQ8K*>(a + t * as) + b;
          const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab->bsums));
          const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
          const __m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[r][t], corr));
          acc[r][t] = _mm256_fmadd_ps(f, _mm256_set1_ps(d * ab->d), acc[r][t]);
        }
      }
    }
    for (int t = 0; t < RN; ++t)
      for (int r = 0; r < RM; ++r) y[t * ldy + r] = hsum(acc[r][t]);
  }
};

}  // namespace

// AVX2 version of quantize_act_q8a, bit-identical to it: the same amax, the same single
// multiply by 127/amax, and round-to-nearest-even (cvtps under the default rounding mode, as
// nearbyintf).
SHARDLM_AVX2 void quantize_act_q8a_avx2(const float* x, void* dst, int64_t k) {
  auto* b = static_cast<BlockQ8A*>(dst);
  float* sums = reinterpret_cast<float*>(b + k / 32);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t i = 0; i < k / 32; ++i, x += 32) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float max_abs = _mm_cvtss_f32(m);
    const float d = max_abs / 127.0f, id = d > 0 ? 127.0f / max_abs : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], vid));
    const __m256i total =
        _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
    t = _mm_hadd_epi32(t, t);
    t = _mm_hadd_epi32(t, t);
    // Pack 32 int32 -> 32 int8; packs interleave 128-bit lanes, the permute restores the order.
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p16a, p16b), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b[i].qs), p8);
    b[i].d = d;
    sums[i] = d * static_cast<float>(_mm_cvtsi128_si32(t));
  }
}

bool avx2_kernels(DType t, CpuKernels* out) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F8_E4M3_G128:
      *out = {nullptr, avx2_gemm_float(t), 4};
      return true;
    case DType::Q8_0:
      *out = {quantize_act_q8a_avx2, avx2_gemm_q8_0(), 4};
      return true;
    case DType::Q4_0:
      *out = {quantize_act_q8a_avx2, avx2_gemm_q4_0(), 4};
      return true;
    case DType::Q4_1:
      *out = {quantize_act_q8a_avx2, avx2_gemm_q4_1(), 4};
      return true;
    case DType::Q4_K:
      *out = {quantize_act_q8k, gemm_tiled<Q4_KTile, 2, 2>, 2};
      return true;
    case DType::Q5_K:
      *out = {quantize_act_q8k, gemm_tiled<Q5_KTile, 2, 2>, 2};
      return true;
    case DType::Q6_K:
      *out = {quantize_act_q8k, gemm_tiled<Q6_KTile, 2, 2>, 2};
      return true;
    default:
      return false;
  }
}

}  // namespace shardlm::cpu

#else  // not x86-64

#include "backend/cpu/vec_dot.h"
namespace shardlm::cpu {
bool avx2_kernels(DType, CpuKernels*) {
  return false;
}
}  // namespace shardlm::cpu
#endif
