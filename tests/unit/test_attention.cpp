// Attention: the prefill path (gathered keys) against the per-row decode path, over a paged cache
// with scattered blocks, GQA, a non-zero past and a sliding window: bit-identical, so a token's
// output does not depend on how its prompt was chunked or cached. Also a chunk against the same
// rows computed one at a time, as decode steps and cache hits compute them.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "backend/cpu/ops.h"

namespace shardlm {
namespace {

// Head sizes 32, 80 and 128 (four rows at a time in the prefill path), and 40 (one row at a time
// there too, with the kernels' 8-wide step after the 16-wide ones).
TEST(Attention, PrefillPathIsBitIdenticalToPerRowPath) {
  for (const int head_dim : {32, 40, 80, 128}) {
    for (int window : {0, 7}) {
      SCOPED_TRACE("head_dim " + std::to_string(head_dim));
      AttentionParams p{6, 2, head_dim, 4, 0, 1.f / std::sqrt(float(head_dim))};
      p.sliding_window = window;
      const int32_t n_past = 9, n_tokens = 21, total = n_past + n_tokens;
      const int64_t kv_dim = p.n_kv_heads * p.head_dim, q_dim = p.n_heads * p.head_dim;
      const int n_blocks = 16;
      std::mt19937 rng(window + 1);
      std::normal_distribution<float> nd;
      std::vector<float> k(static_cast<size_t>(n_blocks * p.block_size * kv_dim)), v(k.size());
      for (auto& x : k) x = nd(rng);
      for (auto& x : v) x = nd(rng);
      std::vector<float> q(static_cast<size_t>(n_tokens * q_dim));
      for (auto& x : q) x = nd(rng);
      std::vector<int32_t> table = {11, 3, 14, 0, 7, 9, 2, 5};  // scattered blocks, 8 x 4 >= 30
      ASSERT_GE(static_cast<int>(table.size()) * p.block_size, total);
      const KvLayerView kv{k.data(), v.data()};
      const AttentionSeq seq{0, n_tokens, n_past, table.data()};
      ThreadPool pool(2);
      cpu::AttentionScratch gemm_scratch, ref_scratch;
      gemm_scratch.reserve(2, 64, 32, p.head_dim);
      ref_scratch.reserve(2, 64, 8, p.head_dim);  // chunk limit 8 < 21: per-head path
      std::vector<float> a(q.size()), b(q.size());
      cpu::attention(pool, gemm_scratch, q.data(), kv, &seq, 1, p, a.data());
      cpu::attention(pool, ref_scratch, q.data(), kv, &seq, 1, p, b.data());
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_EQ(a[i], b[i]) << "window " << window << " at " << i;
      // The same rows as chunks of 16 after a longer cached past, one at a time.
      std::vector<float> c(q.size());
      for (int32_t start = 0; start < n_tokens;) {
        const int32_t len = start == 0 ? 16 : 1;
        const AttentionSeq part{start, len, n_past + start, table.data()};
        cpu::attention(pool, gemm_scratch, q.data(), kv, &part, 1, p, c.data());
        start += len;
      }
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_EQ(a[i], c[i]) << "window " << window << " at " << i;
    }
  }
}

}  // namespace
}  // namespace shardlm
