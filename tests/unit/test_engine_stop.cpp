// Stop decided in one place, the engine's step: a stop string ends the request in the step whose
// token completed it (with reason stop and the text cut there), exactly as a stop token does, and
// the step's events carry the text the client receives.
#include <gtest/gtest.h>

#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

class EngineStopTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static TempDir dir("engine_stop");
    write_tiny_hf_model(dir.path("m"), TinyModelSpec{});
    EngineArgs args;
    args.model = dir.path("m");
    args.threads = 1;
    args.device = "cpu";
    args.num_kv_blocks = 64;
    args.show_progress = false;
    llm_ = new LLM(args);
  }

  struct Run {
    std::string text;  // events' text, then the final text
    std::vector<int32_t> tokens;
    RequestFinishReason reason = RequestFinishReason::kAbort;
    bool finished_with_last_token = false;  // the end came in the step of its last token
  };
  static Run run(const std::vector<int32_t>& prompt, const SamplingParams& p) {
    Engine& engine = llm_->engine();
    const int64_t id = engine.add_request(prompt, p);
    Run r;
    while (engine.has_unfinished()) {
      const StepOutput step = engine.step();
      bool token_now = false;
      for (const TokenEvent& e : step.tokens) {
        if (e.request_id != id) continue;
        r.text += e.text;
        r.tokens.push_back(e.token);
        token_now = true;
      }
      for (const FinishedRequest& f : step.finished) {
        r.text += f.final_text;
        r.reason = f.reason;
        r.finished_with_last_token = token_now;
        EXPECT_EQ(f.output, r.tokens);
      }
    }
    return r;
  }
  static SamplingParams greedy(int max_tokens) {
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.max_tokens = max_tokens;
    return p;
  }

  static LLM* llm_;
};
LLM* EngineStopTest::llm_ = nullptr;

const std::vector<int32_t> kPrompt = {40, 50, 60, 70, 80};

TEST_F(EngineStopTest, StopStringEndsTheRequestInItsStep) {
  const Run full = run(kPrompt, greedy(12));
  ASSERT_EQ(full.reason, RequestFinishReason::kLength);
  ASSERT_EQ(full.tokens.size(), 12u);
  ASSERT_GE(full.text.size(), 6u);
  SamplingParams p = greedy(12);
  p.stop = {full.text.substr(3, 2)};
  const size_t cut = full.text.find(p.stop[0]);
  const Run stopped = run(kPrompt, p);
  EXPECT_EQ(stopped.reason, RequestFinishReason::kStop);
  EXPECT_TRUE(stopped.finished_with_last_token);
  EXPECT_EQ(stopped.text, full.text.substr(0, cut));
  ASSERT_LT(stopped.tokens.size(), full.tokens.size());
  EXPECT_EQ(stopped.tokens,
            std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + stopped.tokens.size()));
  p.include_stop_str_in_output = true;
  EXPECT_EQ(run(kPrompt, p).text, full.text.substr(0, cut + 2));
}

TEST_F(EngineStopTest, StopTokenAndLengthEndInTheirStepToo) {
  const Run full = run(kPrompt, greedy(8));
  EXPECT_TRUE(full.finished_with_last_token);
  SamplingParams p = greedy(8);
  p.stop_token_ids = {full.tokens[2]};
  const Run stopped = run(kPrompt, p);
  EXPECT_EQ(stopped.reason, RequestFinishReason::kStop);
  EXPECT_TRUE(stopped.finished_with_last_token);
  EXPECT_EQ(stopped.tokens.back(), full.tokens[2]);
}

}  // namespace
}  // namespace shardlm
