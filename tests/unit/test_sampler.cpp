// Sampler: greedy, seeds, top-k/top-p/min-p truncation and penalties, checked by frequencies; the
// host draw is the device reference's draw for the same (seed, counter).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "backend/cpu/sample.h"
#include "core/error.h"
#include "engine/device_sampling.h"
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
  Sampler s(p, p.seed.value_or(0));
  for (int i = 0; i < n; ++i) {  // draw i of the stream
    auto l = logits;
    ++h[s.sample(l.data(), static_cast<int32_t>(l.size()), {}, {}, static_cast<uint64_t>(i))];
  }
  return h;
}

const std::vector<double> kProbs = {0.5, 0.3, 0.15, 0.05};

TEST(Sampler, TemperatureZeroIsArgmax) {
  SamplingParams p;
  p.temperature = 0;
  auto l = logits_of({0.1, 0.2, 0.6, 0.1});
  Sampler s(p, 0);
  EXPECT_EQ(s.sample(l.data(), 4, {}, {}), 2);
}

TEST(Sampler, TinyTemperaturesAreGreedy) {
  // Logits divided by 1e-38 overflow to inf: such temperatures must sample greedily, not noise.
  for (float t : {1e-38f, 1e-45f, 1e-6f}) {
    SamplingParams p;
    p.temperature = t;
    p.seed = 3;
    EXPECT_TRUE(p.greedy()) << t;
    Sampler s(p, 3);
    for (int i = 0; i < 50; ++i) {
      auto l = logits_of({0.1, 0.2, 0.6, 0.1});
      EXPECT_EQ(s.sample(l.data(), 4, {}, {}, uint64_t(i)), 2) << t;
    }
  }
  SamplingParams warm;
  warm.temperature = 1e-4f;
  EXPECT_FALSE(warm.greedy());
}

TEST(Sampler, SameSeedSameSequence) {
  SamplingParams p;
  p.seed = 42;
  Sampler a(p, 42), b(p, 42), other(p, 43);
  int differ = 0;
  for (uint64_t i = 0; i < 100; ++i) {
    auto l1 = logits_of(kProbs), l2 = logits_of(kProbs), l3 = logits_of(kProbs);
    const int32_t t = a.sample(l1.data(), 4, {}, {}, i);
    EXPECT_EQ(t, b.sample(l2.data(), 4, {}, {}, i));
    differ += t != other.sample(l3.data(), 4, {}, {}, i);
  }
  EXPECT_GT(differ, 10);  // another seed is another stream
}

// The host sampler and the device reference (Backend::sample's contract) draw the same token for
// the same (seed, counter), with penalties and every cut, and the counter defaults to the output
// length.
TEST(Sampler, HostDrawIsTheDeviceDraw) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-4.f, 4.f);
  const int32_t vocab = 500;
  const std::vector<int32_t> prompt = {1, 2, 3, 3, 40};
  for (int trial = 0; trial < 200; ++trial) {
    SamplingParams sp;
    sp.temperature = 0.3f + 0.01f * float(trial % 100);
    sp.top_k = trial % 3 == 0 ? 0 : 5 + trial % 50;
    sp.top_p = trial % 4 == 0 ? 1.f : 0.5f + 0.004f * float(trial % 100);
    sp.min_p = trial % 5 == 0 ? 0.05f : 0.f;
    sp.repetition_penalty = trial % 2 ? 1.3f : 1.f;
    sp.frequency_penalty = trial % 7 == 0 ? 0.5f : 0.f;
    const std::vector<int32_t> output(static_cast<size_t>(trial % 9), 3);
    std::vector<float> row(static_cast<size_t>(vocab));
    for (auto& l : row) l = u(rng);
    const uint64_t seed = 1000 + static_cast<uint64_t>(trial);
    auto host = row;
    const int32_t got = Sampler(sp, seed).sample(host.data(), vocab, prompt, output);
    std::vector<PenaltyToken> list;
    append_penalty_tokens(sp, prompt, output, list);
    RowSampling p = row_sampling(sp, seed, output.size());
    p.penalties = list.data();
    p.n_penalties = static_cast<int32_t>(list.size());
    int32_t want = -1;
    cpu::sample_rows(row.data(), 1, vocab, &p, &want, nullptr);
    EXPECT_EQ(got, want) << trial;
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
  Sampler s(p, 0);
  EXPECT_EQ(s.sample(l.data(), 3, {0}, {}), 1);  // 2.0 / 2 = 1.0 < 1.5
  SamplingParams q;
  q.temperature = 0;
  q.frequency_penalty = 0.3f;
  l = {2.0f, 1.5f, -1.f};
  Sampler f(q, 0);
  EXPECT_EQ(f.sample(l.data(), 3, {}, {0, 0}), 1);  // 2.0 - 0.6 = 1.4
  SamplingParams r;
  r.temperature = 0;
  r.presence_penalty = 0.4f;
  l = {2.0f, 1.7f, -1.f};
  Sampler g(r, 0);
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
