// The float-activation gemms, written once for two vector widths: weights in F32, F16, BF16 or
// F8_E4M3_G128 (core/fp8.h: each row's E4M3 codes, then a scale per 128 columns) times fp32
// activations. Included inside an anonymous namespace by vec_dot_float_avx2.cpp (__m256) and
// vec_dot_float_avx512.cpp (__m512), after defining
//   SHARDLM_F_TARGET  the target attribute of every function here
//   SHARDLM_F_WIDE    0 for 8 lanes (AVX2), 1 for 16 (AVX-512)
// and including <immintrin.h>, <algorithm>, <type_traits>, <vector>, core/fp16.h, core/fp8.h and
// backend/cpu/vec_dot_avx2_tiled.h (gemm_tiled).
//
// Each (row, token) pair of a tile sums its products lane-wise over a group of columns (FP8: the
// 128 columns one scale covers, which then multiplies the group's sum once; the float types: the
// whole row), then across lanes, then adds the k % lanes columns left. The order depends on the
// width only, never on the batch or the tile, so a token's outputs are the same alone and in any
// batch. FP8 codes become floats exactly (as FP16 bit patterns that the FP16 conversion widens),
// so an FP8 weight is 1 byte read; batches of kWidenTokens tokens or more first write 16 rows in
// that FP16 form, so a code is decoded once for the batch rather than once per tile of tokens
// (the same values, in the same order: the results are the same either way).

#if SHARDLM_F_WIDE
using Vec = __m512;
using HalfBits = __m256i;  // kLanes FP16 bit patterns
constexpr int64_t kLanes = 16;
SHARDLM_F_TARGET inline Vec v_zero() {
  return _mm512_setzero_ps();
}
SHARDLM_F_TARGET inline Vec v_fma(Vec a, Vec b, Vec c) {
  return _mm512_fmadd_ps(a, b, c);
}
SHARDLM_F_TARGET inline Vec v_set1(float s) {
  return _mm512_set1_ps(s);
}
SHARDLM_F_TARGET inline Vec v_f32(const float* p) {
  return _mm512_loadu_ps(p);
}
SHARDLM_F_TARGET inline float v_sum(Vec v) {
  return _mm512_reduce_add_ps(v);
}
SHARDLM_F_TARGET inline HalfBits half_bits(const uint16_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
SHARDLM_F_TARGET inline Vec v_f16(HalfBits h) {
  return _mm512_cvtph_ps(h);
}
SHARDLM_F_TARGET inline Vec v_bf16(HalfBits h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
// kLanes E4M3 codes, sign-extended to 16 bits.
SHARDLM_F_TARGET inline HalfBits code_words(const uint8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
SHARDLM_F_TARGET inline HalfBits e4m3_halves(HalfBits words) {
  return _mm256_and_si256(_mm256_slli_epi16(words, 7), _mm256_set1_epi16(-0x4001));
}
SHARDLM_F_TARGET inline void store_halves(uint16_t* p, HalfBits h) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), h);
}
#else
using Vec = __m256;
using HalfBits = __m128i;
constexpr int64_t kLanes = 8;
SHARDLM_F_TARGET inline Vec v_zero() {
  return _mm256_setzero_ps();
}
SHARDLM_F_TARGET inline Vec v_fma(Vec a, Vec b, Vec c) {
  return _mm256_fmadd_ps(a, b, c);
}
SHARDLM_F_TARGET inline Vec v_set1(float s) {
  return _mm256_set1_ps(s);
}
SHARDLM_F_TARGET inline Vec v_f32(const float* p) {
  return _mm256_loadu_ps(p);
}
SHARDLM_F_TARGET inline float v_sum(Vec v) {
  return hsum(v);
}
SHARDLM_F_TARGET inline HalfBits half_bits(const uint16_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
SHARDLM_F_TARGET inline Vec v_f16(HalfBits h) {
  return _mm256_cvtph_ps(h);
}
SHARDLM_F_TARGET inline Vec v_bf16(HalfBits h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
SHARDLM_F_TARGET inline HalfBits code_words(const uint8_t* p) {
  return _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
SHARDLM_F_TARGET inline HalfBits e4m3_halves(HalfBits words) {
  return _mm_and_si128(_mm_slli_epi16(words, 7), _mm_set1_epi16(-0x4001));
}
SHARDLM_F_TARGET inline void store_halves(uint16_t* p, HalfBits h) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), h);
}
#endif

struct Fp16Bits {};  // tags of Plain's 16-bit types
struct Bf16Bits {};

// Where a tile reads a row's weights: kLanes of them as floats (lanes), one of them (value), and
// for FP8 the scale of the group of kFp8GroupCols starting at column g0 (kGroupCols 0: no groups,
// no scales). kVecs vectors are decoded per step (lanes_n).
template <class T>
struct Plain {  // F32, F16, BF16
  static constexpr int64_t kGroupCols = 0;
  static constexpr int kVecs = 1;
  SHARDLM_F_TARGET static Vec lanes(const uint8_t* row, int64_t i) {
    if constexpr (std::is_same_v<T, float>) {
      return v_f32(reinterpret_cast<const float*>(row) + i);
    } else {
      const HalfBits h = half_bits(reinterpret_cast<const uint16_t*>(row) + i);
      return std::is_same_v<T, Fp16Bits> ? v_f16(h) : v_bf16(h);
    }
  }
  static float value(const uint8_t* row, int64_t i) {
    if constexpr (std::is_same_v<T, float>) return reinterpret_cast<const float*>(row)[i];
    const uint16_t bits = reinterpret_cast<const uint16_t*>(row)[i];
    return std::is_same_v<T, Fp16Bits> ? fp16_to_fp32(bits) : bf16_to_fp32(bits);
  }
};

// FP8 rows as F8_E4M3_G128 holds them: k codes, then the scales. Their values here are code x 2^-8
// (FP16 holds E4M3 exactly that way: its exponent bias is 8 more), undone by the scale x 2^8.
struct Fp8Codes {
  static constexpr int64_t kGroupCols = kFp8GroupCols;
  static constexpr size_t kBytes = 1;
#if SHARDLM_F_WIDE
  static constexpr int kVecs = 1;
#else
  static constexpr int kVecs = 2;  // 16 codes decoded in one 256-bit vector: fewer instructions
#endif
  SHARDLM_F_TARGET static Vec lanes(const uint8_t* row, int64_t i) {
    return v_f16(e4m3_halves(code_words(row + i)));
  }
#if !SHARDLM_F_WIDE
  SHARDLM_F_TARGET static void lanes_n(const uint8_t* row, int64_t i, Vec* out) {
    const __m256i c =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)));
    const __m256i h = _mm256_and_si256(_mm256_slli_epi16(c, 7), _mm256_set1_epi16(-0x4001));
    out[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    out[1] = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
  }
#endif
  static float value(const uint8_t* row, int64_t i) {
    return e4m3_values()[row[i]] / 256.f;
  }
};

// The same rows in their FP16 form (widen_row): k FP16 bit patterns, then the scales.
struct Fp8Halves {
  static constexpr int64_t kGroupCols = kFp8GroupCols;
  static constexpr size_t kBytes = 2;
  static constexpr int kVecs = 1;
  SHARDLM_F_TARGET static Vec lanes(const uint8_t* row, int64_t i) {
    return v_f16(half_bits(reinterpret_cast<const uint16_t*>(row) + i));
  }
  static float value(const uint8_t* row, int64_t i) {
    return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]);
  }
};

template <class Src>
inline float group_scale(const uint8_t* row, int64_t k, int64_t g0) {
  const auto* scales = reinterpret_cast<const float*>(row + Src::kBytes * static_cast<size_t>(k));
  return scales[g0 / kFp8GroupCols] * 256.f;  // times 2^8: see Fp8Codes
}

template <class Src>
struct Tile {
  template <int RM, int RN>
  struct K {
    SHARDLM_F_TARGET static void run(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a,
                                     size_t as, float* y, int64_t ldy) {
      constexpr bool kGroups = Src::kGroupCols > 0;
      const auto x_at = [a, as](int t, int64_t i) {
        return reinterpret_cast<const float*>(a + t * as) + i;
      };
      Vec total[RM][RN];
      for (int r = 0; r < RM; ++r)
        for (int t = 0; t < RN; ++t) total[r][t] = v_zero();
      const int64_t kv = k / kLanes * kLanes;
      const int64_t group = kGroups ? Src::kGroupCols : kv;
      for (int64_t g0 = 0; g0 < kv; g0 += group) {
        const int64_t g1 = std::min(g0 + group, kv);
        Vec acc[RM][RN];
        for (int r = 0; r < RM; ++r)
          for (int t = 0; t < RN; ++t) acc[r][t] = v_zero();
        int64_t i = g0;
        if constexpr (Src::kVecs > 1) {  // steps of kVecs vectors, in the order single steps take
          for (; i + kLanes * Src::kVecs <= g1; i += kLanes * Src::kVecs) {
            for (int r = 0; r < RM; ++r) {
              Vec wv[Src::kVecs];
              Src::lanes_n(w + r * ws, i, wv);
              for (int t = 0; t < RN; ++t)
                for (int j = 0; j < Src::kVecs; ++j)
                  acc[r][t] = v_fma(wv[j], v_f32(x_at(t, i + j * kLanes)), acc[r][t]);
            }
          }
        }
        for (; i < g1; i += kLanes) {
          for (int r = 0; r < RM; ++r) {
            const Vec wv = Src::lanes(w + r * ws, i);
            for (int t = 0; t < RN; ++t) acc[r][t] = v_fma(wv, v_f32(x_at(t, i)), acc[r][t]);
          }
        }
        for (int r = 0; r < RM; ++r) {
          if constexpr (kGroups) {
            const Vec s = v_set1(group_scale<Src>(w + r * ws, k, g0));
            for (int t = 0; t < RN; ++t) total[r][t] = v_fma(acc[r][t], s, total[r][t]);
          } else {
            for (int t = 0; t < RN; ++t) total[r][t] = acc[r][t];
          }
        }
      }
      for (int t = 0; t < RN; ++t) {
        for (int r = 0; r < RM; ++r) {
          const uint8_t* row = w + r * ws;
          float tail = 0;  // the k % kLanes columns left
          for (int64_t i = kv; i < k; ++i) tail += Src::value(row, i) * *x_at(t, i);
          if constexpr (kGroups) {
            if (kv < k) tail *= group_scale<Src>(row, k, kv);
          }
          y[t * ldy + r] = v_sum(total[r][t]) + tail;
        }
      }
    }
  };
};

template <int RM, int RN>
using F32Tile = Tile<Plain<float>>::K<RM, RN>;
template <int RM, int RN>
using F16Tile = Tile<Plain<Fp16Bits>>::K<RM, RN>;
template <int RM, int RN>
using BF16Tile = Tile<Plain<Bf16Bits>>::K<RM, RN>;
template <int RM, int RN>
using Fp8CodesTile = Tile<Fp8Codes>::K<RM, RN>;
template <int RM, int RN>
using Fp8HalvesTile = Tile<Fp8Halves>::K<RM, RN>;

// Batches of at least this many tokens go through the FP16 form, kWidenRows rows at a time (a
// multiple of the row tile, so the tiles are those of the direct path).
constexpr int64_t kWidenTokens = 4, kWidenRows = 16;

// One F8_E4M3_G128 row of k codes in its FP16 form: k FP16 bit patterns, then the scales.
SHARDLM_F_TARGET void widen_row(const uint8_t* row, int64_t k, uint8_t* out) {
  auto* halves = reinterpret_cast<uint16_t*>(out);
  int64_t i = 0;
  for (; i + kLanes <= k; i += kLanes) store_halves(halves + i, e4m3_halves(code_words(row + i)));
  for (; i < k; ++i) {
    const auto c = static_cast<int16_t>(static_cast<int8_t>(row[i]));
    halves[i] = static_cast<uint16_t>((c << 7) & 0xbfff);
  }
  const int64_t groups = (k + kFp8GroupCols - 1) / kFp8GroupCols;
  std::copy_n(fp8_group_scales(row, k), groups, reinterpret_cast<float*>(out + 2 * k));
}

template <int RM, int RN>
SHARDLM_F_TARGET void gemm_fp8_groups(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a,
                                      size_t as, float* y, int64_t ldy, int64_t nr, int64_t nt) {
  if (nt < kWidenTokens) return gemm_tiled<Fp8CodesTile, RM, RN>(k, w, ws, a, as, y, ldy, nr, nt);
  const size_t stride = row_bytes(DType::F8_E4M3_G128, k) + static_cast<size_t>(k);  // 2-byte codes
  thread_local std::vector<uint8_t> rows;
  if (rows.size() < kWidenRows * stride) rows.resize(kWidenRows * stride);
  for (int64_t r0 = 0; r0 < nr; r0 += kWidenRows) {
    const int64_t n = std::min(kWidenRows, nr - r0);
    for (int64_t r = 0; r < n; ++r) widen_row(w + (r0 + r) * ws, k, rows.data() + r * stride);
    gemm_tiled<Fp8HalvesTile, RM, RN>(k, rows.data(), stride, a, as, y + r0, ldy, n, nt);
  }
}
