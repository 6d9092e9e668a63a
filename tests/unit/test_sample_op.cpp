// The CPU reference of Backend::sample (backend/cpu/sample.h) and the engine's penalty lists:
// Philox known answers, greedy = first argmax, seeded draws reproducible, cuts never escaped,
// draw frequencies matching softmax, penalties identical to the host Sampler's, and token masks
// (structured output) applied as the engine's host path applies them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <set>

#include "backend/cpu/sample.h"
#include "core/philox.h"
#include "engine/device_sampling.h"
#include "engine/grammar.h"
#include "engine/sampler.h"

namespace shardlm {
namespace {

std::vector<float> random_row(size_t n, std::mt19937& rng, float scale = 2.f) {
  std::normal_distribution<float> nd(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

RowSampling sampling(float temperature, int top_k = 0, float top_p = 1.f, float min_p = 0.f) {
  RowSampling p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = 1234;
  return p;
}

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
TEST(Philox, KnownAnswers) {
  const Philox4x32 zero = philox4x32_10({{0, 0, 0, 0}}, 0, 0);
  EXPECT_EQ(zero.v[0], 0x6627e8d5u);
  EXPECT_EQ(zero.v[1], 0xe169c58du);
  EXPECT_EQ(zero.v[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.v[3], 0x9b00dbd8u);
  const Philox4x32 pi = philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
                                      0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(pi.v[0], 0xd16cfe09u);
  EXPECT_EQ(pi.v[1], 0x94fdccebu);
  EXPECT_EQ(pi.v[2], 0x5001e420u);
  EXPECT_EQ(pi.v[3], 0x24126ea1u);
}

TEST(Philox, UniformsInUnitIntervalAndSpread) {
  double sum = 0;
  for (uint64_t c = 0; c < 10000; ++c) {
    const double u = philox_uniform(99, c);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
  EXPECT_NE(philox_uniform(1, 0), philox_uniform(2, 0));
}

TEST(SampleOp, GreedyIsFirstArgmaxWithLogprob) {
  std::mt19937 rng(1);
  auto row = random_row(1000, rng);
  const float top = *std::max_element(row.begin(), row.end());
  row[700] = top + 1.f;
  row[300] = top + 1.f;  // a tie: the lower id wins
  const cpu::RowDraw d = cpu::sample_row(row.data(), 1000, sampling(0.f));
  EXPECT_EQ(d.token, 300);
  EXPECT_EQ(d.token, argmax(row.data(), 1000));
  double z = 0;
  for (float l : row) z += std::exp(double(l) - row[300]);
  EXPECT_NEAR(d.logprob, -std::log(z), 1e-5);
}

TEST(SampleOp, SeededDrawIsReproducibleAndCounterMatters) {
  std::mt19937 rng(2);
  const auto row = random_row(500, rng, 0.5f);
  std::set<int32_t> seen;
  for (uint64_t c = 0; c < 50; ++c) {
    RowSampling p = sampling(1.f);
    p.counter = c;
    const int32_t a = cpu::sample_row(row.data(), 500, p).token;
    EXPECT_EQ(a, cpu::sample_row(row.data(), 500, p).token);
    seen.insert(a);
  }
  EXPECT_GT(seen.size(), 10u);  // a flat row: 50 draws land on many tokens
}

// The allowed set computed independently: indices sorted by value, cut by each rule.
std::set<int32_t> allowed(const std::vector<float>& row, float t, int top_k, float top_p,
                          float min_p) {
  std::vector<int32_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  const size_t k = top_k > 0 ? std::min(order.size(), size_t(top_k)) : order.size();
  std::vector<double> p(k);
  double z = 0;
  for (size_t i = 0; i < k; ++i) z += p[i] = std::exp((row[order[i]] - row[order[0]]) / t);
  std::set<int32_t> out;
  double cum = 0;
  for (size_t i = 0; i < k && cum < top_p * z; ++i) {
    cum += p[i];
    if (p[i] >= min_p * p[0] * (1 - 1e-6)) out.insert(order[i]);
  }
  return out;
}

TEST(SampleOp, CutsNeverPickOutsideTheAllowedSet) {
  std::mt19937 rng(3);
  struct Case {
    float t;
    int k;
    float p, m;
  };
  for (const Case c : {Case{1.f, 5, 1.f, 0.f}, Case{0.8f, 0, 0.5f, 0.f}, Case{1.2f, 0, 1.f, 0.3f},
                       Case{1.f, 50, 0.9f, 0.05f}, Case{2.f, 1, 1.f, 0.f}}) {
    const auto row = random_row(2000, rng);
    const auto ok = allowed(row, c.t, c.k, c.p, c.m);
    std::set<int32_t> drawn;
    for (uint64_t n = 0; n < 300; ++n) {
      RowSampling p = sampling(c.t, c.k, c.p, c.m);
      p.counter = n;
      const int32_t tok = cpu::sample_row(row.data(), 2000, p).token;
      ASSERT_TRUE(ok.count(tok)) << "k=" << c.k << " p=" << c.p << " min_p=" << c.m;
      drawn.insert(tok);
    }
    if (ok.size() > 1) EXPECT_GT(drawn.size(), 1u);
  }
}

TEST(SampleOp, FrequenciesFollowTemperedSoftmax) {
  const std::vector<float> row = {1.f, 0.5f, 0.f, -1.f, 2.f};
  const float t = 0.7f;
  std::vector<double> want(row.size());
  double z = 0;
  for (size_t i = 0; i < row.size(); ++i) z += want[i] = std::exp(row[i] / t);
  std::vector<int> got(row.size());
  const int n = 40000;
  for (int c = 0; c < n; ++c) {
    RowSampling p = sampling(t);
    p.seed = 77;
    p.counter = static_cast<uint64_t>(c);
    ++got[static_cast<size_t>(cpu::sample_row(row.data(), 5, p).token)];
  }
  for (size_t i = 0; i < row.size(); ++i) EXPECT_NEAR(got[i] / double(n), want[i] / z, 0.01) << i;
}

TEST(SampleOp, PenaltiesMatchTheHostSampler) {
  std::mt19937 rng(4);
  const int32_t vocab = 300;
  for (int trial = 0; trial < 20; ++trial) {
    SamplingParams sp;
    sp.temperature = 0;
    sp.repetition_penalty = trial % 3 == 0 ? 1.f : 1.4f;
    sp.presence_penalty = trial % 2 ? 0.7f : 0.f;
    sp.frequency_penalty = trial % 4 < 2 ? 0.4f : 0.f;
    std::vector<int32_t> prompt(40), output(25);
    for (auto& t : prompt) t = static_cast<int32_t>(rng() % 60);  // many repeats
    for (auto& t : output) t = static_cast<int32_t>(rng() % 60);
    const auto row = random_row(vocab, rng);
    auto host = row;
    const int32_t want =
        Sampler(sp, 0).sample(host.data(), vocab, prompt, output, 0);  // penalised in place
    std::vector<PenaltyToken> list;
    append_penalty_tokens(sp, prompt, output, list);
    RowSampling p = row_sampling(sp, 0, 0);
    p.penalties = list.data();
    p.n_penalties = static_cast<int32_t>(list.size());
    auto dev = row;
    int32_t got = -1;
    cpu::sample_rows(dev.data(), 1, vocab, &p, &got, nullptr);
    EXPECT_EQ(got, want) << trial;
    EXPECT_EQ(dev, host) << trial;
  }
}

// A random mask of `words` words allowing about `density` of the tokens, at least one below vocab.
std::vector<uint32_t> random_mask(int32_t vocab, size_t words, double density, std::mt19937& rng) {
  std::vector<uint32_t> mask(words, 0u);
  std::bernoulli_distribution keep(density);
  for (size_t i = 0; i < words * 32; ++i) {
    if (keep(rng)) mask[i / 32] |= 1u << (i % 32);
  }
  const auto one =
      static_cast<size_t>(rng() % static_cast<uint32_t>(std::min<size_t>(vocab, words * 32)));
  mask[one / 32] |= 1u << (one % 32);
  return mask;
}

// RowSampling::allowed in cpu::sample_rows (Backend::sample's reference) against the engine's
// host path (apply_token_mask, then the Sampler): the same token, always an allowed one, greedy
// and seeded with cuts and penalties; vocabularies that are not whole words, masks shorter than
// the vocabulary (the tokens past them are not allowed) and rows allowing one token.
TEST(SampleOp, TokenMasksDrawOnlyAllowedTokensAsTheHostPathDoes) {
  std::mt19937 rng(21);
  for (int32_t vocab : {7, 77, 1000, 4099}) {
    const size_t words = (static_cast<size_t>(vocab) + 31) / 32;
    for (int trial = 0; trial < 40; ++trial) {
      SamplingParams sp;
      sp.temperature = trial % 4 == 0 ? 0.f : 0.5f + 0.25f * static_cast<float>(trial % 5);
      sp.top_k = trial % 3 == 1 ? 5 : 0;
      sp.top_p = trial % 5 == 2 ? 0.7f : 1.f;
      sp.repetition_penalty = trial % 6 == 3 ? 1.3f : 1.f;
      const std::vector<int32_t> prompt = {1, 2, 3}, output = {3, 4};
      const size_t n_words = trial % 7 == 6 ? std::max<size_t>(1, words / 2) : words;
      const double density = trial % 8 == 5 ? 0.0 : trial % 2 ? 0.05 : 0.6;  // 0: one token
      const auto mask = random_mask(vocab, n_words, density, rng);
      const auto row = random_row(static_cast<size_t>(vocab), rng, 3.f);
      auto host = row;
      apply_token_mask(mask, host.data(), vocab);
      const auto seed = static_cast<uint64_t>(trial);
      const int32_t want = Sampler(sp, seed).sample(host.data(), vocab, prompt, output);
      std::vector<PenaltyToken> list;
      append_penalty_tokens(sp, prompt, output, list);
      RowSampling p = row_sampling(sp, seed, output.size());
      p.penalties = list.data();
      p.n_penalties = static_cast<int32_t>(list.size());
      p.allowed = token_bitmask(mask);
      auto dev = row;
      int32_t got = -1;
      cpu::sample_rows(dev.data(), 1, vocab, &p, &got, nullptr);
      EXPECT_EQ(got, want) << "vocab " << vocab << " trial " << trial;
      EXPECT_TRUE(p.allowed.allows(got)) << "vocab " << vocab << " trial " << trial;
      EXPECT_EQ(dev, host) << "vocab " << vocab << " trial " << trial;
    }
  }
}

TEST(SampleOp, TokenMaskOfOneTokenAndNoMask) {
  std::mt19937 rng(5);
  const int32_t vocab = 100;  // 4 words, the last one partly past the vocabulary
  const auto row = random_row(vocab, rng);
  std::vector<uint32_t> only(4, 0u);
  only[3] = 1u << (99 - 96);  // token 99, the last
  RowSampling p = sampling(2.f, 0, 0.9f);
  p.allowed = token_bitmask(only);
  auto masked = row;
  int32_t got = -1;
  cpu::sample_rows(masked.data(), 1, vocab, &p, &got, nullptr);
  EXPECT_EQ(got, 99);
  for (int32_t t = 0; t < 99; ++t) EXPECT_TRUE(std::isinf(masked[size_t(t)])) << t;
  EXPECT_FALSE(TokenBitmask{}.restricts());  // no words: every token allowed, the row untouched
  auto untouched = row;
  cpu::apply_token_mask(untouched.data(), vocab, TokenBitmask{});
  EXPECT_EQ(untouched, row);
}

TEST(SampleOp, PenaltyListsAreDistinctWithOutputCounts) {
  SamplingParams sp;
  sp.frequency_penalty = 0.5f;
  std::vector<PenaltyToken> list;
  append_penalty_tokens(sp, {1, 2, 3}, {5, 3, 5, 5}, list);
  ASSERT_EQ(list.size(), 2u);  // the prompt counts only for repetition_penalty
  EXPECT_EQ(list[0].token, 3);
  EXPECT_EQ(list[0].output_count, 1);
  EXPECT_EQ(list[1].token, 5);
  EXPECT_EQ(list[1].output_count, 3);
  sp.repetition_penalty = 1.2f;
  list.clear();
  append_penalty_tokens(sp, {1, 2, 3}, {5, 3, 5, 5}, list);
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].token, 1);
  EXPECT_EQ(list[0].output_count, 0);
  sp = SamplingParams{};
  list.clear();
  append_penalty_tokens(sp, {1, 2}, {3}, list);
  EXPECT_TRUE(list.empty());
}

}  // namespace
}  // namespace shardlm
