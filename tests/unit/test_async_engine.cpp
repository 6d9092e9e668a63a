// The engine thread behind the server: streamed outputs equal offline generation, stop strings
// end requests, aborts free KV blocks, stop() ends every stream, bad requests throw at submit.
#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "engine/async_engine.h"
#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;
using std::chrono::milliseconds;

// Long enough that the request is still running when the test aborts it.
constexpr int kLong = 4000;

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = max_tokens;
  return p;
}

// Reads a stream to its end.
RequestOutput drain(RequestStream& s) {
  RequestOutput all;
  while (!s.done()) {
    if (auto out = s.next(milliseconds(100))) all.merge(std::move(*out));
  }
  return all;
}

class AsyncEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyModelSpec spec;
    spec.context = 4096;
    write_tiny_hf_model(dir_.path("m"), spec);
    EngineArgs args;
    args.model = dir_.path("m");
    args.threads = 1;
    args.device = "cpu";  // the CPU reference, also where a GPU is visible
    args.max_model_len = 4096;
    args.num_kv_blocks = 1024;
    args.show_progress = false;
    llm_ = std::make_unique<LLM>(args);
  }
  std::vector<std::vector<int32_t>> prompts() const {
    return {{10, 20, 30}, {40, 50, 60, 70, 80}, {90, 91}, {5, 6, 7, 8, 9, 10, 11}};
  }

  TempDir dir_{"async_engine"};
  std::unique_ptr<LLM> llm_;
};

TEST_F(AsyncEngineTest, ConcurrentStreamsEqualOfflineGeneration) {
  const auto offline = llm_->generate(prompts(), greedy(10));
  AsyncEngine engine(llm_->engine());
  std::vector<RequestOutput> outputs(prompts().size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts().size(); ++i) {
    clients.emplace_back([&, i] {
      auto stream = engine.submit(prompts()[i], greedy(10));
      outputs[i] = drain(*stream);
    });
  }
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_EQ(outputs[i].token_ids, offline[i].token_ids) << i;
    EXPECT_EQ(outputs[i].text, offline[i].text) << i;
    EXPECT_EQ(outputs[i].finish_reason, RequestFinishReason::kLength);
    EXPECT_EQ(outputs[i].n_output_tokens, 10);
    EXPECT_EQ(outputs[i].n_prompt_tokens, static_cast<int32_t>(prompts()[i].size()));
  }
  EXPECT_EQ(engine.in_flight(), 0u);
}

TEST_F(AsyncEngineTest, StopStringEndsRequestAndIsCutFromText) {
  const auto offline = llm_->generate({prompts()[1]}, greedy(12));
  const std::string full = offline[0].text;
  ASSERT_GE(full.size(), 6u);
  SamplingParams p = greedy(12);
  p.stop = {full.substr(3, 2)};
  const size_t cut = full.find(p.stop[0]);
  AsyncEngine engine(llm_->engine());
  const RequestOutput out = drain(*engine.submit(prompts()[1], p));
  EXPECT_EQ(out.finish_reason, RequestFinishReason::kStop);
  EXPECT_EQ(out.text, full.substr(0, cut));
  EXPECT_LT(out.n_output_tokens, 12);
}

TEST_F(AsyncEngineTest, AbortFreesBlocks) {
  AsyncEngine engine(llm_->engine());
  auto stream = engine.submit(prompts()[0], greedy(kLong));
  std::optional<RequestOutput> first;
  while (!first) first = stream->next(milliseconds(100));
  engine.abort(stream->id());
  const RequestOutput rest = drain(*stream);
  EXPECT_EQ(rest.finish_reason, RequestFinishReason::kAbort);
  EXPECT_LT(rest.n_output_tokens, kLong);
  for (int i = 0; i < 50 && engine.stats().kv_usage > 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(engine.stats().kv_usage, 0.0);
  EXPECT_EQ(engine.stats().running, 0);
}

TEST_F(AsyncEngineTest, StopEndsEveryStream) {
  auto engine = std::make_unique<AsyncEngine>(llm_->engine());
  auto a = engine->submit(prompts()[0], greedy(kLong));
  auto b = engine->submit(prompts()[1], greedy(kLong));
  engine->stop();
  EXPECT_EQ(drain(*a).finish_reason, RequestFinishReason::kAbort);
  EXPECT_EQ(drain(*b).finish_reason, RequestFinishReason::kAbort);
  EXPECT_THROW(engine->submit(prompts()[0], greedy(4)), Error);
}

TEST_F(AsyncEngineTest, BadRequestsThrowAtSubmit) {
  AsyncEngine engine(llm_->engine());
  EXPECT_THROW(engine.submit({}, greedy(4)), Error);
  EXPECT_THROW(engine.submit({1, 100000}, greedy(4)), Error);
  EXPECT_THROW(engine.submit(std::vector<int32_t>(5000, 1), greedy(4)), Error);
  SamplingParams bad = greedy(4);
  bad.logprobs = 99;
  EXPECT_THROW(engine.submit({1, 2}, bad), Error);
  EXPECT_EQ(engine.in_flight(), 0u);
}

TEST_F(AsyncEngineTest, LogprobsPerToken) {
  SamplingParams p = greedy(5);
  p.logprobs = 3;
  AsyncEngine engine(llm_->engine());
  const RequestOutput out = drain(*engine.submit(prompts()[2], p));
  ASSERT_EQ(out.logprobs.size(), 5u);
  for (size_t i = 0; i < out.logprobs.size(); ++i) {
    const TokenLogprobs& lp = out.logprobs[i];
    EXPECT_EQ(lp.token, out.token_ids[i]);
    ASSERT_EQ(lp.top.size(), 3u);
    EXPECT_EQ(lp.top[0].first, lp.token);  // greedy picks the most likely token
    EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob);
    EXPECT_LE(lp.logprob, 0.f);
    EXPECT_GE(lp.top[0].second, lp.top[1].second);
  }
}

}  // namespace
}  // namespace shardlm
