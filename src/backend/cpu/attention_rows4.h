// Four consecutive query rows of one head attended together (prefill without a sliding window):
// each key and value row is loaded once for the four, and every row's arithmetic is exactly
// attend_row's (the same AVX2 fused multiply-adds in the same order, the same reduction), so the
// results stay bit-identical to the decode path. Needs AVX2 and head_dim % 16 == 0.
#pragma once

#include "backend/cpu/attention_row.h"

namespace shardlm::cpu {

namespace attention_detail {

constexpr int kRowBlock = 4;

// dot_avx2(q[r], k, n) for the four rows (n % 16 == 0).
__attribute__((target("avx2,fma"))) inline void dot4_avx2(const float* const* q, const float* k,
                                                          int n, float* out) {
  __m256 acc0[kRowBlock], acc1[kRowBlock];
  for (int r = 0; r < kRowBlock; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    const __m256 k0 = _mm256_loadu_ps(k + i), k1 = _mm256_loadu_ps(k + i + 8);
    for (int r = 0; r < kRowBlock; ++r) {
      acc0[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q[r] + i), k0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q[r] + i + 8), k1, acc1[r]);
    }
  }
  for (int r = 0; r < kRowBlock; ++r) {
    const __m256 acc = _mm256_add_ps(acc0[r], acc1[r]);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    out[r] = _mm_cvtss_f32(s);
  }
}

// axpy_avx2(y[r], a[r], x, n) for the four rows (n % 8 == 0).
__attribute__((target("avx2,fma"))) inline void axpy4_avx2(float* const* y, const float* a,
                                                           const float* x, int n) {
  __m256 va[kRowBlock];
  for (int r = 0; r < kRowBlock; ++r) va[r] = _mm256_set1_ps(a[r]);
  for (int i = 0; i < n; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    for (int r = 0; r < kRowBlock; ++r) {
      _mm256_storeu_ps(y[r] + i, _mm256_fmadd_ps(va[r], xv, _mm256_loadu_ps(y[r] + i)));
    }
  }
}

}  // namespace attention_detail

// True when attend_rows4 may be used: AVX2 kernels, no sliding window, head_dim % 16 == 0.
inline bool rows4_supported(const AttentionParams& p) {
  return active_cpu_isa() != CpuIsa::Scalar && p.sliding_window == 0 && p.head_dim % 16 == 0;
}

// attend_row for the rows at positions pos0 .. pos0 + 3; scores[r] holds pos0 + 4 floats.
template <class Rows>
void attend_rows4(const float* const* q, const Rows& rows, int32_t pos0, const AttentionParams& p,
                  float* const* scores, float* const* out) {
  using namespace attention_detail;
  const auto& ops = vec_ops();
  const int d = p.head_dim;
  const int32_t shared = pos0 + 1;  // keys [0, pos0] are visible to all four rows
  float dots[kRowBlock];
  for (int32_t j = 0; j < shared; ++j) {
    dot4_avx2(q, rows.key(j), d, dots);
    for (int r = 0; r < kRowBlock; ++r) scores[r][j] = dots[r] * p.scale;
  }
  float inv[kRowBlock];
  for (int r = 0; r < kRowBlock; ++r) {
    for (int32_t j = shared; j < shared + r; ++j) {  // the keys only the later rows see
      scores[r][j] = ops.dot(q[r], rows.key(j), d) * p.scale;
    }
    inv[r] = softmax_in_place(scores[r], shared + r);
    std::fill(out[r], out[r] + d, 0.f);
  }
  float w[kRowBlock];
  for (int32_t j = 0; j < shared; ++j) {
    for (int r = 0; r < kRowBlock; ++r) w[r] = scores[r][j] * inv[r];
    axpy4_avx2(out, w, rows.value(j), d);
  }
  for (int r = 1; r < kRowBlock; ++r) {
    for (int32_t j = shared; j < shared + r; ++j) {
      ops.axpy(out[r], scores[r][j] * inv[r], rows.value(j), d);
    }
  }
}

}  // namespace shardlm::cpu
