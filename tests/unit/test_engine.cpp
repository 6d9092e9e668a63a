// The engine on a tiny real model: batching must not change results. Greedy outputs of many
// concurrent requests equal each request run alone, also with forced chunked
// prefill, forced preemption and prefix-cache sharing.
#include <gtest/gtest.h>

#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

// Ten prompts of 5 to 41 tokens; the first four share a 20-token prefix.
std::vector<std::vector<int32_t>> make_prompts() {
  std::vector<std::vector<int32_t>> prompts;
  uint32_t x = 12345;
  auto next = [&] {
    x = x * 1103515245u + 12345u;
    return static_cast<int32_t>((x >> 16) % 256);
  };
  std::vector<int32_t> shared(20);
  for (auto& t : shared) t = next();
  for (int i = 0; i < 10; ++i) {
    std::vector<int32_t> p = i < 4 ? shared : std::vector<int32_t>{};
    const int extra = 5 + (i * 7) % 22;
    for (int j = 0; j < extra; ++j) p.push_back(next());
    prompts.push_back(p);
  }
  return prompts;
}

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = 12;
  return p;
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("engine");
    write_tiny_hf_model(dir_->path("m"), TinyModelSpec{});
    auto s = make_session(dir_->path("m"), 2, 64, 256);
    for (const auto& p : make_prompts()) {
      const std::vector<int32_t> out = generate_ids(*s.llm, p, greedy());
      reference_->push_back(out);
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    reference_->clear();
  }

  EngineArgs args() const {
    EngineArgs a;
    a.model = dir_->path("m");
    a.threads = 2;
    a.device = "cpu";  // compared with CPU sessions, also where a GPU is visible
    a.max_model_len = 128;
    a.max_num_seqs = 16;
    a.max_num_batched_tokens = 64;
    a.num_kv_blocks = 64;
    a.show_progress = false;
    return a;
  }

  void expect_reference(const std::vector<GenerateOutput>& outputs) {
    ASSERT_EQ(outputs.size(), reference_->size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      EXPECT_EQ(outputs[i].token_ids, (*reference_)[i]) << "prompt " << i;
      EXPECT_EQ(outputs[i].finish_reason, RequestFinishReason::kLength);
    }
  }

  static TempDir* dir_;
  static std::vector<std::vector<int32_t>>* reference_;
};

TempDir* EngineTest::dir_ = nullptr;
std::vector<std::vector<int32_t>>* EngineTest::reference_ = new std::vector<std::vector<int32_t>>;

TEST_F(EngineTest, ConcurrentGreedyEqualsAlone) {
  LLM llm(args());
  expect_reference(llm.generate(make_prompts(), greedy()));
  EXPECT_FALSE(llm.engine().has_unfinished());
  EXPECT_EQ(llm.engine().block_manager().usage(), 0.0);
}

TEST_F(EngineTest, ForcedChunkingKeepsResults) {
  EngineArgs a = args();
  a.max_num_batched_tokens = 7;  // every prompt is split, decodes are spread over steps
  a.max_num_seqs = 7;
  LLM llm(a);
  expect_reference(llm.generate(make_prompts(), greedy()));
}

TEST_F(EngineTest, ForcedPreemptionKeepsResults) {
  EngineArgs a = args();
  a.block_size = 4;
  a.num_kv_blocks = 32;  // 128 tokens for ten requests of up to 53
  LLM llm(a);
  const auto outputs = llm.generate(make_prompts(), greedy());
  expect_reference(outputs);
  int preemptions = 0;
  for (const auto& o : outputs) preemptions += o.n_preemptions;
  EXPECT_GT(preemptions, 0);
}

TEST_F(EngineTest, PrefixCacheSharingKeepsResults) {
  EngineArgs a = args();
  a.block_size = 4;
  LLM llm(a);
  const auto prompts = make_prompts();
  // The first request computes the shared prefix; the others then find it cached.
  const auto first = llm.generate({prompts[0]}, greedy());
  EXPECT_EQ(first[0].token_ids, (*reference_)[0]);
  expect_reference(llm.generate(prompts, greedy()));
  EXPECT_GE(llm.engine().block_manager().stats().hit_tokens, 3 * 20);
}

TEST_F(EngineTest, NoPrefixCachingKeepsResults) {
  EngineArgs a = args();
  a.enable_prefix_caching = false;
  LLM llm(a);
  expect_reference(llm.generate(make_prompts(), greedy()));
  EXPECT_EQ(llm.engine().block_manager().stats().hit_tokens, 0);
}

TEST_F(EngineTest, TextPromptsAndFinishReasons) {
  LLM llm(args());
  SamplingParams p = greedy();
  p.max_tokens = 5;
  const auto outputs = llm.generate(std::vector<std::string>{"hello", "the quick brown fox"}, p);
  ASSERT_EQ(outputs.size(), 2u);
  for (const auto& o : outputs) {
    EXPECT_EQ(o.token_ids.size(), 5u);
    EXPECT_EQ(o.finish_reason, RequestFinishReason::kLength);
    EXPECT_EQ(o.text, llm.tokenizer().decode(o.token_ids, true));
    EXPECT_FALSE(o.prompt_token_ids.empty());
  }
}

}  // namespace
}  // namespace shardlm
