// Causal grouped-query attention over the paged KV cache. Each (query row, head) pair is one work
// item: scores against every visible key, softmax, weighted sum of values. Keys of position j live
// in slot block_table[j / block_size] * block_size + j % block_size.
#include <algorithm>
#include <cmath>

#include "backend/cpu/attention_row.h"
#include "backend/cpu/ops.h"

namespace shardlm::cpu {

namespace {

struct HeadTask {
  const float* q;  // [head_dim]
  float* out;      // [head_dim]
  int32_t pos;     // position of the query
  int kv_head;
  const int32_t* block_table;
};

// Keys and values of one kv head, read in place from the paged pool.
struct PagedRows {
  const KvLayerView& kv;
  const AttentionParams& p;
  const int32_t* block_table;
  int kv_head;
  const float* at(const float* base, int32_t j) const {
    const int64_t kv_dim = static_cast<int64_t>(p.n_kv_heads) * p.head_dim;
    const int64_t slot =
        static_cast<int64_t>(block_table[j / p.block_size]) * p.block_size + j % p.block_size;
    return base + slot * kv_dim + static_cast<int64_t>(kv_head) * p.head_dim;
  }
  const float* key(int32_t j) const { return at(kv.k_f32(), j); }
  const float* value(int32_t j) const { return at(kv.v_f32(), j); }
};

void attend_head(const HeadTask& t, const KvLayerView& kv, const AttentionParams& p,
                 float* scores) {
  attend_row(t.q, PagedRows{kv, p, t.block_table, t.kv_head}, t.pos, p, scores, t.out);
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
    std::copy(k + t * kv_dim, k + (t + 1) * kv_dim,
              kv.k_f32() + static_cast<int64_t>(slots[t]) * kv_dim);
    std::copy(v + t * kv_dim, v + (t + 1) * kv_dim,
              kv.v_f32() + static_cast<int64_t>(slots[t]) * kv_dim);
  }
}

}  // namespace shardlm::cpu
