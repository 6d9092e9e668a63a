// Attention: the GEMM prefill path against the per-head reference path, over a paged cache with
// scattered blocks, GQA, a non-zero past and a sliding window.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/cpu/ops.h"

namespace shardlm {
namespace {

TEST(Attention, PrefillGemmPathMatchesPerHeadPath) {
  const AttentionParams base{6, 2, 32, 4, 0, 1.f / std::sqrt(32.f)};
  for (int window : {0, 7}) {
    AttentionParams p = base;
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
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4) << "window " << window << " at " << i;
  }
}

}  // namespace
}  // namespace shardlm
