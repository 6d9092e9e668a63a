// Sampler: greedy, seeds, top-k/top-p/min-p truncation and penalties, checked by frequencies.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "engine/sampler.h"

namespace shardlm {
namespace {

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::map<int32_t, int> histogram(SamplingParams p, const std::vector<float>& logits, int n) {
  std::map<int32_t, int> h;
  Sampler s(p);
  for (int i = 0; i < n; ++i) {
    auto l = logits;
    ++h[s.sample(l.data(), static_cast<int32_t>(l.size()), {}, {})];
  }
  return h;
}

const std::vector<double> kProbs = {0.5, 0.3, 0.15, 0.05};

TEST(Sampler, TemperatureZeroIsArgmax) {
  SamplingParams p;
  p.temperature = 0;
  auto l = logits_of({0.1, 0.2, 0.6, 0.1});
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 4, {}, {}), 2);
}

TEST(Sampler, TinyTemperaturesAreGreedy) {
  // Logits divided by 1e-38 overflow to inf: such temperatures must sample greedily, not noise.
  for (float t : {1e-38f, 1e-45f, 1e-6f}) {
    SamplingParams p;
    p.temperature = t;
    p.seed = 3;
    EXPECT_TRUE(p.greedy()) << t;
    Sampler s(p);
    for (int i = 0; i < 50; ++i) {
      auto l = logits_of({0.1, 0.2, 0.6, 0.1});
      EXPECT_EQ(s.sample(l.data(), 4, {}, {}), 2) << t;
    }
  }
  SamplingParams warm;
  warm.temperature = 1e-4f;
  EXPECT_FALSE(warm.greedy());
}

TEST(Sampler, SameSeedSameSequence) {
  SamplingParams p;
  p.seed = 42;
  Sampler a(p), b(p);
  for (int i = 0; i < 100; ++i) {
    auto l1 = logits_of(kProbs), l2 = logits_of(kProbs);
    EXPECT_EQ(a.sample(l1.data(), 4, {}, {}), b.sample(l2.data(), 4, {}, {}));
  }
}

TEST(Sampler, FrequenciesFollowProbabilities) {
  SamplingParams p;
  p.seed = 1;
  const auto h = histogram(p, logits_of(kProbs), 20000);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(h.count(i) ? h.at(i) / 20000.0 : 0, kProbs[static_cast<size_t>(i)], 0.015);
}

TEST(Sampler, TopKTopPMinPTruncate) {
  SamplingParams p;
  p.seed = 2;
  p.top_k = 2;
  auto h = histogram(p, logits_of(kProbs), 5000);
  EXPECT_EQ(h.count(2) + h.count(3), 0u);
  EXPECT_NEAR(h[0] / 5000.0, 0.5 / 0.8, 0.03);
  p.top_k = 0;
  p.top_p = 0.7f;  // 0.5 + 0.3 reaches 0.7: keep two
  h = histogram(p, logits_of(kProbs), 5000);
  EXPECT_EQ(h.count(2) + h.count(3), 0u);
  p.top_p = 1.f;
  p.min_p = 0.2f;  // keep p >= 0.1
  h = histogram(p, logits_of(kProbs), 5000);
  EXPECT_EQ(h.count(3), 0u);
  EXPECT_GT(h[2], 0);
}

TEST(Sampler, PenaltiesChangeTheChoice) {
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.f;
  auto l = std::vector<float>{2.0f, 1.5f, -1.f};
  Sampler s(p);
  EXPECT_EQ(s.sample(l.data(), 3, {0}, {}), 1);  // 2.0 / 2 = 1.0 < 1.5
  SamplingParams q;
  q.temperature = 0;
  q.frequency_penalty = 0.3f;
  l = {2.0f, 1.5f, -1.f};
  Sampler f(q);
  EXPECT_EQ(f.sample(l.data(), 3, {}, {0, 0}), 1);  // 2.0 - 0.6 = 1.4
  SamplingParams r;
  r.temperature = 0;
  r.presence_penalty = 0.4f;
  l = {2.0f, 1.7f, -1.f};
  Sampler g(r);
  EXPECT_EQ(g.sample(l.data(), 3, {}, {0}), 1);  // 1.6 < 1.7
}

TEST(Sampler, InvalidParamsAreNamed) {
  SamplingParams p;
  p.top_p = 0;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.temperature = -1;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.min_p = 2;
  EXPECT_THROW(p.validate(), Error);
}

}  // namespace
}  // namespace shardlm
