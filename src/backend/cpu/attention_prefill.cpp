// Prefill attention of a sequence chunk: for each query head, gather the head's keys and values
// from the paged cache into contiguous rows once, then attend each row of the chunk with the same
// attend_row as the decode path (not a GEMM, whose rounding depends on the chunk's size), so that a
// token's output is bit-identical however its prompt was split or cached. Rows go four at a time
// where attend_rows4 allows (same arithmetic, each key and value loaded once for the four). Heads
// are spread over the thread pool.
#include <cstring>

#include "backend/cpu/attention_rows4.h"
#include "backend/cpu/ops.h"

namespace shardlm::cpu {

void AttentionScratch::reserve(int threads, int64_t context, int64_t chunk, int64_t dim) {
  max_context = context;
  max_chunk = dim > 0 ? chunk : 0;  // without a head size the per-row path handles every chunk
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

// Keys and values of one kv head gathered into contiguous rows (position j at row j).
struct GatheredRows {
  const float* keys;
  const float* values;
  int head_dim;
  const float* key(int32_t j) const { return keys + static_cast<int64_t>(j) * head_dim; }
  const float* value(int32_t j) const { return values + static_cast<int64_t>(j) * head_dim; }
};

void prefill_head(float* scratch, const float* q, const KvLayerView& kv, const AttentionSeq& seq,
                  const AttentionParams& p, int head, int64_t max_context, float* out) {
  const int32_t n_keys = seq.n_past + seq.n_tokens;
  const int d = p.head_dim;
  const int64_t q_row = static_cast<int64_t>(p.n_heads) * d;
  float* keys = scratch + kScoreRows * max_context;  // [n_keys, d], after kScoreRows score rows
  float* values = keys + max_context * d;            // [n_keys, d]
  const int kv_head = head / (p.n_heads / p.n_kv_heads);
  gather_head(kv.k_f32(), seq, p, kv_head, n_keys, keys);
  gather_head(kv.v_f32(), seq, p, kv_head, n_keys, values);
  static_assert(attention_detail::kRowBlock <= kScoreRows);
  const GatheredRows rows{keys, values, d};
  auto offset = [&](int32_t i) {
    return (seq.first_row + i) * q_row + static_cast<int64_t>(head) * d;
  };
  int32_t i = 0;
  if (rows4_supported(p)) {
    for (; i + attention_detail::kRowBlock <= seq.n_tokens; i += attention_detail::kRowBlock) {
      const float* qs[] = {q + offset(i), q + offset(i + 1), q + offset(i + 2), q + offset(i + 3)};
      float* outs[] = {out + offset(i), out + offset(i + 1), out + offset(i + 2),
                       out + offset(i + 3)};
      float* scores[] = {scratch, scratch + max_context, scratch + 2 * max_context,
                         scratch + 3 * max_context};
      attend_rows4(qs, rows, seq.n_past + i, p, scores, outs);
    }
  }
  for (; i < seq.n_tokens; ++i) {
    attend_row(q + offset(i), rows, seq.n_past + i, p, scratch, out + offset(i));
  }
}

}  // namespace

void attention_prefill(ThreadPool& pool, AttentionScratch& scratch, const float* q,
                       const KvLayerView& kv, const AttentionSeq& seq, const AttentionParams& p,
                       float* out) {
  pool.run([&](int slot, int n_slots) {
    float* s = scratch.prefill_scratch(slot);
    for (int h = slot; h < p.n_heads; h += n_slots) {
      prefill_head(s, q, kv, seq, p, h, scratch.max_context, out);
    }
  });
}

}  // namespace shardlm::cpu
