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

// Scratch for attention: one score row of max_context floats per thread.
struct AttentionScratch {
  std::vector<float> scores;
  int64_t max_context = 0;
};
void attention(ThreadPool& pool, AttentionScratch& scratch, const float* q, const KvLayerView& kv,
               const AttentionSeq* seqs, int n_seqs, const AttentionParams& p, float* out);
void silu_mul(ThreadPool& pool, const float* gate, const float* up, float* out, int64_t n);
void add(ThreadPool& pool, float* x, const float* y, int64_t n);
void add_bias(float* x, const float* b, int64_t rows, int64_t dim);

}  // namespace shardlm::cpu
