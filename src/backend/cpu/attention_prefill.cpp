// Prefill attention as GEMMs: for each query head of a sequence chunk, gather the head's keys and
// values from the paged cache into contiguous rows, compute all scores with one sgemm (Q K^T),
// apply the causal (and sliding-window) mask and softmax row by row, then one sgemm for P V. Heads
// are spread over the thread pool; OpenBLAS itself runs single-threaded inside each.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/ops.h"

namespace shardlm::cpu {

void AttentionScratch::reserve(int threads, int64_t context, int64_t chunk, int64_t dim) {
  max_context = context;
  max_chunk = dim > 0 ? chunk : 0;  // without a head size the per-head path handles every chunk
  head_dim = dim;
  scores.assign(static_cast<size_t>(context) * threads, 0.f);
  prefill.assign(static_cast<size_t>(prefill_stride()) * threads, 0.f);
}

float* AttentionScratch::prefill_scratch(int slot) {
  return prefill.data() + static_cast<size_t>(slot) * prefill_stride();
}

namespace {

// Copies one kv head's rows for positions [0, n) out of the paged pool: dst is n x head_dim.
void gather_head(const float* pool, const AttentionSeq& seq, const AttentionParams& p, int kv_head,
                 int32_t n, float* dst) {
  const int64_t kv_dim = static_cast<int64_t>(p.n_kv_heads) * p.head_dim;
  for (int32_t j = 0; j < n; ++j) {
    const int64_t slot =
        static_cast<int64_t>(seq.block_table[j / p.block_size]) * p.block_size + j % p.block_size;
    std::memcpy(dst + static_cast<int64_t>(j) * p.head_dim,
                pool + slot * kv_dim + static_cast<int64_t>(kv_head) * p.head_dim,
                sizeof(float) * static_cast<size_t>(p.head_dim));
  }
}

// Masked softmax of one score row: keys [lo, hi] are visible, the rest get probability 0.
void softmax_row(float* row, int32_t lo, int32_t hi, int32_t n) {
  float max_v = -INFINITY;
  for (int32_t j = lo; j <= hi; ++j) max_v = std::max(max_v, row[j]);
  float sum = 0.f;
  for (int32_t j = lo; j <= hi; ++j) {
    row[j] = std::exp(row[j] - max_v);
    sum += row[j];
  }
  const float inv = 1.f / sum;
  std::fill(row, row + lo, 0.f);
  for (int32_t j = lo; j <= hi; ++j) row[j] *= inv;
  std::fill(row + hi + 1, row + n, 0.f);
}

void prefill_head(float* scratch, const float* q, const KvLayerView& kv, const AttentionSeq& seq,
                  const AttentionParams& p, int head, int64_t max_context, int64_t max_chunk,
                  float* out) {
  const int32_t n_keys = seq.n_past + seq.n_tokens;
  const int m = seq.n_tokens, d = p.head_dim;
  const int64_t q_row = static_cast<int64_t>(p.n_heads) * d;
  float* scores = scratch;                          // [m, n_keys]
  float* keys = scratch + max_chunk * max_context;  // [n_keys, d]
  float* values = keys + max_context * d;           // [n_keys, d]
  const int kv_head = head / (p.n_heads / p.n_kv_heads);
  gather_head(kv.k, seq, p, kv_head, n_keys, keys);
  gather_head(kv.v, seq, p, kv_head, n_keys, values);
  const float* qh = q + seq.first_row * q_row + static_cast<int64_t>(head) * d;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n_keys, d, p.scale, qh,
              static_cast<int>(q_row), keys, d, 0.f, scores, n_keys);
  for (int i = 0; i < m; ++i) {
    const int32_t pos = seq.n_past + i;
    const int32_t lo = p.sliding_window > 0 ? std::max(0, pos - p.sliding_window + 1) : 0;
    softmax_row(scores + static_cast<int64_t>(i) * n_keys, lo, pos, n_keys);
  }
  float* oh = out + seq.first_row * q_row + static_cast<int64_t>(head) * d;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, n_keys, 1.f, scores, n_keys, values,
              d, 0.f, oh, static_cast<int>(q_row));
}

}  // namespace

void attention_prefill(ThreadPool& pool, AttentionScratch& scratch, const float* q,
                       const KvLayerView& kv, const AttentionSeq& seq, const AttentionParams& p,
                       float* out) {
  pool.run([&](int slot, int n_slots) {
    float* s = scratch.prefill_scratch(slot);
    for (int h = slot; h < p.n_heads; h += n_slots) {
      prefill_head(s, q, kv, seq, p, h, scratch.max_context, scratch.max_chunk, out);
    }
  });
}

}  // namespace shardlm::cpu
