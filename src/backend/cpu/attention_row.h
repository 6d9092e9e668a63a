// One query row of causal attention: scores against the visible keys, softmax, weighted sum of
// values, in one fixed order of operations. The decode path (keys read in place from the paged
// pool) and the prefill path (keys gathered into contiguous rows) both call it, so a token's
// attention output is bit-identical whether it was computed in a whole prefill, in a chunk after
// a cached prefix, or alone: greedy and seeded output does not depend on prefix-cache hits or on
// how a prompt was split into chunks.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "backend/backend.h"
#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {

namespace attention_detail {

inline float dot_scalar(const float* a, const float* b, int n) {
  float s = 0.f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy_scalar(float* y, float a, const float* x, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

__attribute__((target("avx2,fma"))) inline float dot_avx2(const float* a, const float* b, int n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  float s = _mm_cvtss_f32(r);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

__attribute__((target("avx2,fma"))) inline void axpy_avx2(float* y, float a, const float* x,
                                                          int n) {
  const __m256 va = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

// The vector kernels for this CPU, chosen once with the matmul kernels' ISA (SHARDLM_CPU_ISA).
struct VecOps {
  float (*dot)(const float*, const float*, int);
  void (*axpy)(float*, float, const float*, int);
};

inline const VecOps& vec_ops() {
  static const VecOps ops = [] {
    if (active_cpu_isa() != CpuIsa::Scalar) {
      return VecOps{dot_avx2, axpy_avx2};
    }
    return VecOps{dot_scalar, axpy_scalar};
  }();
  return ops;
}

// Turns n scores into exp(score - max) in place and returns 1 / their sum: the weights are
// scores[j] * the result. Both attend_row and attend_rows4 use it, so their rounding is one.
inline float softmax_in_place(float* scores, int32_t n) {
  float max_score = -INFINITY;
  for (int32_t j = 0; j < n; ++j) max_score = std::max(max_score, scores[j]);
  float sum = 0.f;
  for (int32_t j = 0; j < n; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    sum += scores[j];
  }
  return 1.f / sum;
}

}  // namespace attention_detail

// `rows` gives key(j) and value(j), each head_dim floats, for absolute positions j. The query at
// position `pos` sees keys [lo, pos], lo from the sliding window. scores: at least pos + 1 floats.
template <class Rows>
void attend_row(const float* q, const Rows& rows, int32_t pos, const AttentionParams& p,
                float* scores, float* out) {
  const auto& ops = attention_detail::vec_ops();
  const int32_t lo = p.sliding_window > 0 ? std::max(0, pos - p.sliding_window + 1) : 0;
  const int32_t n = pos - lo + 1;
  for (int32_t j = 0; j < n; ++j) scores[j] = ops.dot(q, rows.key(lo + j), p.head_dim) * p.scale;
  const float inv = attention_detail::softmax_in_place(scores, n);
  std::fill(out, out + p.head_dim, 0.f);
  for (int32_t j = 0; j < n; ++j) ops.axpy(out, scores[j] * inv, rows.value(lo + j), p.head_dim);
}

}  // namespace shardlm::cpu
