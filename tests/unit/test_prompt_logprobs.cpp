// Prompt log-probabilities (SamplingParams::prompt_logprobs, the server's echo + logprobs and
// prompt_logprobs): each prompt token's log-probability under the positions before it equals the
// CPU reference (a full forward's logits, LLM::prompt_logits) and teacher forcing (the prefix as a
// prompt of its own, its next-token distribution); whole prompts, chunked prefills and prompts the
// prefix cache already holds alike.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/async_engine.h"
#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;
using std::chrono::milliseconds;

RequestOutput drain(RequestStream& s) {
  RequestOutput all;
  while (!s.done()) {
    if (auto out = s.next(milliseconds(100))) all.merge(std::move(*out));
  }
  return all;
}

SamplingParams scoring(int top) {
  SamplingParams p;
  p.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = 2;
  p.prompt_logprobs = top;
  return p;
}

class PromptLogprobsTest : public ::testing::Test {
 protected:
  void make(int chunk) {
    TinyModelSpec spec;
    spec.context = 512;
    write_tiny_hf_model(dir_.path("m"), spec);
    EngineArgs args;
    args.model = dir_.path("m");
    args.threads = 1;
    args.device = "cpu";
    args.max_model_len = 512;
    args.num_kv_blocks = 256;
    args.max_num_batched_tokens = chunk;
    args.show_progress = false;
    llm_ = std::make_unique<LLM>(args);
  }
  std::vector<int32_t> prompt() const {
    std::vector<int32_t> p;
    for (int i = 0; i < 37; ++i) p.push_back((i * 7 + 3) % 200 + 1);
    return p;
  }
  // Log-probability of prompt[k + 1] after prompt[0..k], from a full forward's logits.
  std::vector<TokenLogprobs> reference(const std::vector<int32_t>& p, int top) {
    const std::vector<float> logits = llm_->prompt_logits(p);
    const int32_t vocab = llm_->runner().vocab_size();
    std::vector<TokenLogprobs> out;
    for (size_t k = 0; k + 1 < p.size(); ++k) {
      out.push_back(token_logprobs(logits.data() + k * size_t(vocab), vocab, p[k + 1], top));
    }
    return out;
  }
  static void expect_equal(const std::vector<TokenLogprobs>& got,
                           const std::vector<TokenLogprobs>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].token, want[k].token) << k;
      EXPECT_NEAR(got[k].logprob, want[k].logprob, 1e-4) << k;
      EXPECT_EQ(got[k].rank, want[k].rank) << k;
      ASSERT_EQ(got[k].top.size(), want[k].top.size()) << k;
      for (size_t j = 0; j < got[k].top.size(); ++j) {
        EXPECT_EQ(got[k].top[j].first, want[k].top[j].first) << k << "/" << j;
        EXPECT_NEAR(got[k].top[j].second, want[k].top[j].second, 1e-4) << k << "/" << j;
      }
    }
  }

  TempDir dir_{"prompt_logprobs"};
  std::unique_ptr<LLM> llm_;
};

TEST_F(PromptLogprobsTest, EqualTheFullForward) {
  make(512);
  const auto want = reference(prompt(), 3);
  AsyncEngine engine(llm_->engine());
  const RequestOutput out = drain(*engine.submit(prompt(), scoring(3)));
  expect_equal(out.prompt_logprobs, want);
  EXPECT_EQ(out.token_ids.size(), 2u);
}

TEST_F(PromptLogprobsTest, EqualTeacherForcing) {
  make(512);
  const std::vector<int32_t> p = prompt();
  const int32_t vocab = llm_->runner().vocab_size();
  // The prefix p[0..k) as a prompt of its own: the log-probability its first generated token
  // would have if it were p[k], read off the logits of the prefix's last position.
  std::vector<std::pair<size_t, float>> forced;
  for (size_t k = 1; k < p.size(); k += 6) {
    const std::vector<int32_t> prefix(p.begin(), p.begin() + long(k));
    const std::vector<float> logits = llm_->prompt_logits(prefix);
    forced.emplace_back(
        k, token_logprobs(logits.data() + (k - 1) * size_t(vocab), vocab, p[k], 0).logprob);
  }
  AsyncEngine engine(llm_->engine());
  const RequestOutput out = drain(*engine.submit(p, scoring(0)));
  ASSERT_EQ(out.prompt_logprobs.size(), p.size() - 1);
  for (const auto& [k, logprob] : forced) {
    EXPECT_NEAR(out.prompt_logprobs[k - 1].logprob, logprob, 1e-4) << k;
  }
}

TEST_F(PromptLogprobsTest, ChunkedPrefillAndCachedPrefix) {
  make(8);  // the 37-token prompt in five chunks
  const auto want = reference(prompt(), 2);
  AsyncEngine engine(llm_->engine());
  SamplingParams plain = scoring(2);
  plain.prompt_logprobs.reset();
  drain(*engine.submit(prompt(), plain));  // the prefix cache now holds the prompt's blocks
  const RequestOutput out = drain(*engine.submit(prompt(), scoring(2)));
  expect_equal(out.prompt_logprobs, want);
}

TEST_F(PromptLogprobsTest, ManyAtOnceBesideOtherRequests) {
  make(64);
  const auto want = reference(prompt(), 1);
  AsyncEngine engine(llm_->engine());
  std::vector<std::shared_ptr<RequestStream>> scored, others;
  for (int i = 0; i < 8; ++i) {
    scored.push_back(engine.submit(prompt(), scoring(1)));
    SamplingParams p = scoring(0);
    p.prompt_logprobs.reset();
    p.max_tokens = 6;
    others.push_back(engine.submit({1, 2, 3, int32_t(i + 4)}, p));
  }
  for (auto& s : scored) expect_equal(drain(*s).prompt_logprobs, want);
  for (auto& s : others) {
    const RequestOutput out = drain(*s);
    EXPECT_TRUE(out.prompt_logprobs.empty());
    EXPECT_EQ(out.token_ids.size(), 6u);
  }
}

TEST(PromptLogprobsParams, RangeChecked) {
  SamplingParams p;
  p.prompt_logprobs = SamplingParams::kMaxLogprobs + 1;
  EXPECT_THROW(p.validate(), Error);
}

}  // namespace
}  // namespace shardlm
