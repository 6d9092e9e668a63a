// CPU reference implementations of the non-matmul backend ops (the matmul lives in matmul.h).
// They are the references every other backend is tested against, and fast enough to serve:
// threaded over the pool and vectorised by the compiler (AVX2 clones chosen at run time).
#pragma once

#include "backend/backend.h"
#include "core/thread_pool.h"

namespace shardlm::cpu {

void rms_norm(ThreadPool& pool, const float* x, const float* w, int64_t rows, int64_t dim,
              float eps, float* out);
void rope(ThreadPool& pool, float* x, const int32_t* positions, int64_t n_tokens, int n_heads,
          const RopeParams& p);
void store_kv(const KvLayerView& kv, const float* k, const float* v, const int32_t* slots,
              int64_t n_tokens, int64_t kv_dim);

// Scratch for attention, per thread: a score row of max_context floats (decode path) and, for the
// prefill path, kScoreRows score rows (rows attended together) plus the gathered keys and values
// of one head.
inline constexpr int64_t kScoreRows = 4;
struct AttentionScratch {
  std::vector<float> scores;
  int64_t max_context = 0;
  int64_t max_chunk = 0;
  int64_t head_dim = 0;
  std::vector<float> prefill;  // per thread: scores, then keys, then values
  void reserve(int threads, int64_t max_context, int64_t max_chunk, int64_t head_dim);
  float* prefill_scratch(int slot);
  int64_t prefill_stride() const { return (kScoreRows + 2 * head_dim) * max_context; }
};
void attention(ThreadPool& pool, AttentionScratch& scratch, const float* q, const KvLayerView& kv,
               const AttentionSeq* seqs, int n_seqs, const AttentionParams& p, float* out);
// Prefill attention of one sequence's chunk over keys and values gathered from the paged cache
// (each row computed exactly as the decode path does); used for chunks of kPrefillMinTokens or
// more.
inline constexpr int32_t kPrefillMinTokens = 16;
void attention_prefill(ThreadPool& pool, AttentionScratch& scratch, const float* q,
                       const KvLayerView& kv, const AttentionSeq& seq, const AttentionParams& p,
                       float* out);
void silu_mul(ThreadPool& pool, const float* gate, const float* up, float* out, int64_t n);
void add(ThreadPool& pool, float* x, const float* y, int64_t n);
void add_bias(float* x, const float* b, int64_t rows, int64_t dim);

}  // namespace shardlm::cpu
