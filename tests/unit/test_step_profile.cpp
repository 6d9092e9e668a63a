// The engine's step profile (engine/step_profile.h, SHARDLM_STEP_PROFILE=1): each phase's time goes
// to the step it belongs to, decode-only steps and steps with prefill tokens are counted apart, a
// disabled profile reports nothing; and the step limits by device (engine_args.h step_seqs /
// step_tokens): what the args name, else 256 / 8,192 on a GPU and 64 / 512 on the CPU.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "backend/make_backend.h"
#include "core/error.h"
#include "engine/engine_args.h"
#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;
using namespace std::chrono_literals;

TEST(StepProfile, PhasesGoToTheirStepAndKind) {
  StepProfile p(true);
  p.begin_step();
  p.describe_step(false, 256, 256);
  p.mark(StepProfile::kSchedule);
  std::this_thread::sleep_for(20ms);
  p.mark(StepProfile::kForward);
  p.begin_step();
  p.describe_step(true, 8192, 300);
  std::this_thread::sleep_for(30ms);
  p.mark(StepProfile::kPostprocess);
  p.begin_step();  // counts the second step
  const std::string r = p.report();
  ASSERT_NE(r.find("decode only"), std::string::npos) << r;
  ASSERT_NE(r.find("with prefill"), std::string::npos) << r;
  // Columns: steps, count, tokens, seqs, schedule, prepare, forward, postprocess, ...
  std::istringstream decode(r.substr(r.find("decode only") + 11));
  double count = 0, tokens = 0, seqs = 0, schedule = 0, prepare = 0, forward = 0, post = 0;
  decode >> count >> tokens >> seqs >> schedule >> prepare >> forward >> post;
  EXPECT_EQ(count, 1);
  EXPECT_EQ(tokens, 256);
  EXPECT_GE(forward, 19.0);
  EXPECT_LT(post, 1.0);
  std::istringstream mixed(r.substr(r.find("with prefill") + 12));
  mixed >> count >> tokens >> seqs >> schedule >> prepare >> forward >> post;
  EXPECT_EQ(tokens, 8192);
  EXPECT_LT(forward, 1.0);
  EXPECT_GE(post, 29.0);
}

TEST(StepProfile, DisabledReportsNothing) {
  StepProfile p(false);
  p.begin_step();
  p.describe_step(false, 1, 1);
  p.mark(StepProfile::kForward);
  p.begin_step();
  EXPECT_EQ(p.report(), "");
}

// Through the engine of a tiny model: its steps are profiled when the variable is set.
TEST(StepProfile, EngineStepsAreProfiled) {
  TempDir dir("step_profile");
  write_tiny_hf_model(dir.path("m"), TinyModelSpec{});
  setenv("SHARDLM_STEP_PROFILE", "1", 1);
  EngineArgs a;
  a.model = dir.path("m");
  a.threads = 2;
  a.device = "cpu";
  a.max_model_len = 128;
  a.num_kv_blocks = 64;
  a.show_progress = false;
  LLM llm(a);
  unsetenv("SHARDLM_STEP_PROFILE");
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.ignore_eos = true;
  greedy.max_tokens = 5;
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5, 6, 7}, {9, 8, 7}};
  llm.generate(prompts, greedy);
  const std::string r = llm.engine().step_profile().report();
  EXPECT_NE(r.find("with prefill"), std::string::npos) << r;
  EXPECT_NE(r.find("decode only"), std::string::npos) << r;
}

TEST(StepLimits, ByDeviceUnlessNamed) {
  EngineArgs a;
  a.device = "cpu";
  EXPECT_EQ(step_seqs(a), 64);
  EXPECT_EQ(step_tokens(a), 512);
  a.max_num_seqs = 7;
  a.max_num_batched_tokens = 24;
  EXPECT_EQ(step_seqs(a), 7);
  EXPECT_EQ(step_tokens(a), 24);
  a.device = "cuda";
  a.max_num_seqs = a.max_num_batched_tokens = 0;
  if (cuda_device_count() > 0) {
    EXPECT_EQ(step_seqs(a), 256);
    EXPECT_EQ(step_tokens(a), 8192);
  } else {  // the device cannot be used: the same error as the backend's
    EXPECT_THROW(step_tokens(a), Error);
  }
}

}  // namespace
}  // namespace shardlm
