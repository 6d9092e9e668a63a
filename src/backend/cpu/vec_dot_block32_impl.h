// SIMD kernels for the 32-element block types (Q4_0, Q4_1, Q8_0) against BlockQ8A activations,
// written once and compiled per instruction set: the including file defines SHARDLM_B32_TARGET
// (a target attribute) and SHARDLM_B32_VNNI (1: the u8 x s8 dot is one vpdpbusd instead of
// maddubs + madd) and includes this inside an anonymous namespace of its own.
// Decode (one token): rows four at a time, scales converted in-register. Prefill: per tile of RM
// rows the fp16 scales are converted once into a small float table and reused for every token
// tile, so a (row, token) pair costs maddubs + madd + cvt + two fma + one mul per block.
// No include guard and no namespace of its own: meant to be included once per ISA file.
#define SHARDLM_AVX2 SHARDLM_B32_TARGET

enum class Kind { Q4_0, Q4_1, Q8_0 };

template <Kind K>
struct Traits;
template <>
struct Traits<Kind::Q4_0> {
  using Block = BlockQ4_0;
};
template <>
struct Traits<Kind::Q4_1> {
  using Block = BlockQ4_1;
};
template <>
struct Traits<Kind::Q8_0> {
  using Block = BlockQ8_0;
};

SHARDLM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 16 bytes of nibbles -> 32 bytes: element j (low nibble of byte j) then element j + 16 (high):
// broadcast to both lanes, shift the high lane by 4, mask.
SHARDLM_AVX2 inline __m256i unpack_nibbles(const uint8_t* p) {
  const __m256i both =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0)),
                          _mm256_set1_epi8(0x0F));
}

SHARDLM_AVX2 inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// Integer dot of one weight block (already unpacked: unsigned nibbles, or for Q8_0 |w|) with one
// activation block, as 8 floats whose sum is the dot.
template <Kind K>
SHARDLM_AVX2 inline __m256 block_dot(__m256i wq, __m256i wsign, const int8_t* aq) {
  __m256i av = load256(aq);
  if constexpr (K == Kind::Q8_0) av = _mm256_sign_epi8(av, wsign);
#if SHARDLM_B32_VNNI
  return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), wq, av));
#else
  const __m256i ones = _mm256_set1_epi16(1);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(wq, av), ones));
#endif
}

template <Kind K>
SHARDLM_AVX2 inline void unpack_block(const typename Traits<K>::Block* wb, __m256i* wq,
                                      __m256i* wsign) {
  if constexpr (K == Kind::Q8_0) {
    *wsign = load256(wb->qs);
    *wq = _mm256_sign_epi8(*wsign, *wsign);
  } else {
    *wq = unpack_nibbles(wb->qs);
    *wsign = *wq;
  }
}

// ---- decode: one token, rows four at a time -------------------------------------------------
// xmm [d, m] of a weight block times [da, s] of the activation block gives [d*da, m*s]: lane 0
// scales the integer dot, lane 1 is the min term (Q4_0: m = -8d; Q8_0: none).
//
// Batch invariance: a token's result must not depend on how many tokens share the matmul, so
// the decode path (one token) and the prefill tiles (many) do the same float operations in the
// same order: the integer dots accumulate with one FMA per block, and the min term is a chain of
// one FMA per block, starting from zero, added to the horizontal sum at the end.
template <Kind K>
SHARDLM_AVX2 inline __m128 block_weight_scales(const typename Traits<K>::Block* wb) {
  if constexpr (K == Kind::Q4_1) {
    return _mm_cvtph_ps(_mm_cvtsi32_si128(*reinterpret_cast<const int32_t*>(wb)));
  } else {
    return _mm_cvtph_ps(_mm_set1_epi16(static_cast<short>(wb->d)));
  }
}

// sum_b m_b * s_b as a chain of scalar FMAs (the prefill form of the decode path's lane 1).
SHARDLM_AVX2 inline float min_term(const float* m, const float* s, int64_t nb) {
  __m128 acc = _mm_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) acc = _mm_fmadd_ss(_mm_load_ss(m + b), _mm_load_ss(s + b), acc);
  return _mm_cvtss_f32(acc);
}

template <Kind K, int RM>
SHARDLM_AVX2 void decode_rows(int64_t nb, const uint8_t* w, size_t ws, const BlockQ8A* ab,
                              const float* sums, float* y) {
  using Block = typename Traits<K>::Block;
  __m256 acc[RM];
  __m128 macc[RM];
  for (int r = 0; r < RM; ++r) {
    acc[r] = _mm256_setzero_ps();
    macc[r] = _mm_setzero_ps();
  }
  const __m128 q4_0_mul = _mm_set_ps(0, 0, -8.0f, 1.0f);
  for (int64_t b = 0; b < nb; ++b) {
    // Rows stream from memory for large matrices: prefetch the row group two groups ahead (the
    // hardware prefetcher alone does not keep up with four interleaved rows).
    for (int r = 0; r < RM; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w + (4 * RM + r) * ws + b * sizeof(Block)),
                   _MM_HINT_T0);
    }
    __m128 act = _mm_unpacklo_ps(_mm_load_ss(&ab[b].d), _mm_load_ss(sums + b));  // [da, s]
    if constexpr (K == Kind::Q4_0) act = _mm_mul_ps(act, q4_0_mul);
    for (int r = 0; r < RM; ++r) {
      const Block* wb = reinterpret_cast<const Block*>(w + r * ws) + b;
      __m256i wq, wsign;
      unpack_block<K>(wb, &wq, &wsign);
      const __m128 wsc = block_weight_scales<K>(wb);
      const __m128 sc = _mm_mul_ps(wsc, act);
      acc[r] =
          _mm256_fmadd_ps(block_dot<K>(wq, wsign, ab[b].qs), _mm256_broadcastss_ps(sc), acc[r]);
      if constexpr (K != Kind::Q8_0) macc[r] = _mm_fmadd_ps(wsc, act, macc[r]);
    }
  }
  for (int r = 0; r < RM; ++r) {
    float s = hsum(acc[r]);
    if constexpr (K != Kind::Q8_0) s += _mm_cvtss_f32(_mm_movehdup_ps(macc[r]));
    y[r] = s;
  }
}

// ---- prefill: RM rows x RN tokens with a float scale table -------------------------------------
// table[b * RM + r] = d of row r, block b (interleaved so a block's rows are adjacent);
// table[nb * RM + r * nb + b] = m (Q4_1) or -8d (Q4_0), per row contiguous over blocks, so the min
// term sum_b m_b * s_b is an 8-wide dot product over blocks.
template <Kind K, int RM>
SHARDLM_AVX2 void fill_scale_table(int64_t nb, int rm, const uint8_t* w, size_t ws, float* table) {
  using Block = typename Traits<K>::Block;
  for (int r = 0; r < rm; ++r) {
    const Block* wb = reinterpret_cast<const Block*>(w + r * ws);
    float* mrow = table + nb * RM + r * nb;
    for (int64_t b = 0; b < nb; ++b) {
      const float d = _cvtsh_ss(wb[b].d);
      table[b * RM + r] = d;
      if constexpr (K == Kind::Q4_1) {
        mrow[b] = _cvtsh_ss(wb[b].m);
      } else {
        mrow[b] = -8.0f * d;
      }
    }
  }
}

// TS: the table's row stride (the full tile height; edge tiles have fewer rows).
template <Kind K, int RM, int RN, int TS>
SHARDLM_AVX2 void tile(int64_t nb, const uint8_t* w, size_t ws, const float* table,
                       const uint8_t* a, size_t as, float* y, int64_t ldy) {
  using Block = typename Traits<K>::Block;
  __m256 acc[RM][RN];
  for (int r = 0; r < RM; ++r)
    for (int t = 0; t < RN; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    for (int r = 0; r < RM; ++r) {
      const Block* wb = reinterpret_cast<const Block*>(w + r * ws) + b;
      __m256i wq, wsign;
      unpack_block<K>(wb, &wq, &wsign);
      const __m256 vd = _mm256_broadcast_ss(table + b * TS + r);
      for (int t = 0; t < RN; ++t) {
        const BlockQ8A* ab = reinterpret_cast<const BlockQ8A*>(a + t * as) + b;
        const __m256 f = block_dot<K>(wq, wsign, ab->qs);
        acc[r][t] = _mm256_fmadd_ps(f, _mm256_mul_ps(vd, _mm256_broadcast_ss(&ab->d)), acc[r][t]);
      }
    }
  }
  for (int t = 0; t < RN; ++t) {
    for (int r = 0; r < RM; ++r) {
      float v = hsum(acc[r][t]);
      if constexpr (K != Kind::Q8_0) {
        v += min_term(table + nb * TS + r * nb, q8a_sums(a + t * as, nb), nb);
      }
      y[t * ldy + r] = v;
    }
  }
}

template <Kind K, int RM, int RN>
SHARDLM_AVX2 void gemm(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as,
                       float* y, int64_t ldy, int64_t nr, int64_t nt) {
  const int64_t nb = k / 32;
  if (nt == 1) {
    const auto* ab = reinterpret_cast<const BlockQ8A*>(a);
    const float* sums = q8a_sums(a, nb);
    int64_t r = 0;
    // Four interleaved rows share the activation loads and win for the 4-bit types; Q8_0 rows are
    // twice as long and stream from memory faster one at a time (measured on Zen, 30 MB matrix).
    if constexpr (K != Kind::Q8_0) {
      for (; r + 4 <= nr; r += 4) decode_rows<K, 4>(nb, w + r * ws, ws, ab, sums, y + r);
    }
    for (; r < nr; ++r) decode_rows<K, 1>(nb, w + r * ws, ws, ab, sums, y + r);
    return;
  }
  using TileFn = void (*)(int64_t, const uint8_t*, size_t, const float*, const uint8_t*, size_t,
                          float*, int64_t);
  static constexpr auto tiles = []<int... I>(std::integer_sequence<int, I...>) {
    return std::array<TileFn, RM * RN>{&tile<K, I / RN + 1, I % RN + 1, RM>...};
  }
  (std::make_integer_sequence<int, RM * RN>{});
  thread_local std::vector<float> table;  // grows once per thread to the largest k seen
  if (table.size() < static_cast<size_t>(nb * RM * 2)) table.resize(nb * RM * 2);  // d and m
  for (int64_t r = 0; r < nr; r += RM) {
    const int rm = static_cast<int>(std::min<int64_t>(RM, nr - r));
    fill_scale_table<K, RM>(nb, rm, w + r * ws, ws, table.data());
    for (int64_t t = 0; t < nt; t += RN) {
      const int rn = static_cast<int>(std::min<int64_t>(RN, nt - t));
      tiles[(rm - 1) * RN + (rn - 1)](nb, w + r * ws, ws, table.data(), a + t * as, as,
                                      y + t * ldy + r, ldy);
    }
  }
}

#undef SHARDLM_AVX2
