// Causal grouped-query attention over the paged KV cache. Each (query row, head) pair is one work
// item: scores against every visible key, softmax, weighted sum of values. Keys of position j live
// in slot block_table[j / block_size] * block_size + j % block_size.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "backend/cpu/ops.h"
#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {

namespace {

float dot_scalar(const float* a, const float* b, int n) {
  float s = 0.f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_scalar(float* y, float a, const float* x, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int n) {
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

__attribute__((target("avx2,fma"))) void axpy_avx2(float* y, float a, const float* x, int n) {
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

const VecOps& vec_ops() {
  static const VecOps ops = [] {
    if (active_cpu_isa() != CpuIsa::Scalar) {
      return VecOps{dot_avx2, axpy_avx2};
    }
    return VecOps{dot_scalar, axpy_scalar};
  }();
  return ops;
}

struct HeadTask {
  const float* q;  // [head_dim]
  float* out;      // [head_dim]
  int32_t pos;     // position of the query
  int kv_head;
  const int32_t* block_table;
};

void attend_head(const HeadTask& t, const KvLayerView& kv, const AttentionParams& p,
                 float* scores) {
  const int64_t kv_dim = static_cast<int64_t>(p.n_kv_heads) * p.head_dim;
  const int32_t lo = p.sliding_window > 0 ? std::max(0, t.pos - p.sliding_window + 1) : 0;
  const int32_t n = t.pos - lo + 1;
  const VecOps& ops = vec_ops();
  auto slot_ptr = [&](const float* base, int32_t j) {
    const int64_t slot =
        static_cast<int64_t>(t.block_table[j / p.block_size]) * p.block_size + j % p.block_size;
    return base + slot * kv_dim + static_cast<int64_t>(t.kv_head) * p.head_dim;
  };
  float max_score = -INFINITY;
  for (int32_t j = 0; j < n; ++j) {
    scores[j] = ops.dot(t.q, slot_ptr(kv.k, lo + j), p.head_dim) * p.scale;
    max_score = std::max(max_score, scores[j]);
  }
  float sum = 0.f;
  for (int32_t j = 0; j < n; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    sum += scores[j];
  }
  std::fill(t.out, t.out + p.head_dim, 0.f);
  const float inv = 1.f / sum;
  for (int32_t j = 0; j < n; ++j)
    ops.axpy(t.out, scores[j] * inv, slot_ptr(kv.v, lo + j), p.head_dim);
}

}  // namespace

void attention(ThreadPool& pool, AttentionScratch& scratch, const float* q, const KvLayerView& kv,
               const AttentionSeq* seqs, int n_seqs, const AttentionParams& p, float* out) {
  const int64_t q_row = static_cast<int64_t>(p.n_heads) * p.head_dim;
  const int group = p.n_heads / p.n_kv_heads;
  bool any_decode = false;
  for (int s = 0; s < n_seqs; ++s) {
    if (seqs[s].n_tokens >= kPrefillMinTokens && seqs[s].n_tokens <= scratch.max_chunk) {
      attention_prefill(pool, scratch, q, kv, seqs[s], p, out);
    } else {
      any_decode = true;
    }
  }
  if (!any_decode) return;
  pool.run([&](int ith, int nth) {
    float* scores = scratch.scores.data() + static_cast<size_t>(ith) * scratch.max_context;
    int64_t item = 0;
    for (int s = 0; s < n_seqs; ++s) {
      const AttentionSeq& seq = seqs[s];
      if (seq.n_tokens >= kPrefillMinTokens && seq.n_tokens <= scratch.max_chunk) continue;
      for (int32_t i = 0; i < seq.n_tokens; ++i) {
        const int64_t row = seq.first_row + i;
        for (int h = 0; h < p.n_heads; ++h, ++item) {
          if (item % nth != ith) continue;
          HeadTask t{q + row * q_row + h * p.head_dim, out + row * q_row + h * p.head_dim,
                     seq.n_past + i, h / group, seq.block_table};
          attend_head(t, kv, p, scores);
        }
      }
    }
  });
}

void store_kv(const KvLayerView& kv, const float* k, const float* v, const int32_t* slots,
              int64_t n_tokens, int64_t kv_dim) {
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::copy(k + t * kv_dim, k + (t + 1) * kv_dim, kv.k + static_cast<int64_t>(slots[t]) * kv_dim);
    std::copy(v + t * kv_dim, v + (t + 1) * kv_dim, kv.v + static_cast<int64_t>(slots[t]) * kv_dim);
  }
}

}  // namespace shardlm::cpu
