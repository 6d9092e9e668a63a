// One sampler on every path: a seeded sampled request gives the same tokens alone and beside a
// request that asks for logprobs. The engine samples a step on the device when every request in it
// can be (Backend::sample), and on the host otherwise (logprobs need the whole row); the runner
// here stands in for a device runner on the CPU (its execute_sampled is Backend::sample's
// reference), so the test sees both paths without a GPU: alone, the seeded request is sampled on
// the "device"; beside a logprobs request, on the host.
#include <gtest/gtest.h>

#include <map>

#include "backend/cpu/sample.h"
#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

// A runner that samples "on the device": the inner runner's logits through cpu::sample_rows, the
// reference every device kernel of Backend::sample is tested against.
class DeviceSamplingRunner : public ModelRunner {
 public:
  explicit DeviceSamplingRunner(std::unique_ptr<ModelRunner> inner) : inner_(std::move(inner)) {}

  int32_t vocab_size() const override { return inner_->vocab_size(); }
  void execute(const ForwardBatch& batch, float* logits) override {
    ++host_steps;
    inner_->execute(batch, logits);
  }
  bool samples_on_device() const override { return true; }
  void execute_sampled(const ForwardBatch& batch, const RowSampling* params,
                       int32_t* tokens) override {
    ++device_steps;
    const auto rows = static_cast<int64_t>(batch.logit_rows.size());
    logits_.resize(static_cast<size_t>(rows * vocab_size()));
    inner_->execute(batch, logits_.data());
    cpu::sample_rows(logits_.data(), rows, vocab_size(), params, tokens, nullptr);
  }

  int host_steps = 0;
  int device_steps = 0;

 private:
  std::unique_ptr<ModelRunner> inner_;
  std::vector<float> logits_;
};

class SeededSamplingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_tiny_hf_model(dir_.path("m"), TinyModelSpec{});
    EngineArgs args;
    args.model = dir_.path("m");
    args.threads = 1;
    args.device = "cpu";
    args.max_model_len = 256;
    args.num_kv_blocks = 128;
    args.show_progress = false;
    args.make_runner = [this](const Model& model, Backend& backend, const KvCacheShape& kv,
                              int64_t max_batch_tokens) {
      auto runner = std::make_unique<DeviceSamplingRunner>(
          std::make_unique<TransformerRunner>(model, backend, kv, max_batch_tokens));
      runner_ = runner.get();
      return runner;
    };
    llm_ = std::make_unique<LLM>(args);
  }

  // Runs the requests together to the end; their output tokens in submission order.
  std::vector<std::vector<int32_t>> run(
      const std::vector<std::pair<std::vector<int32_t>, SamplingParams>>& requests) {
    Engine& engine = llm_->engine();
    std::map<int64_t, size_t> index;
    for (size_t i = 0; i < requests.size(); ++i) {
      index[engine.add_request(requests[i].first, requests[i].second)] = i;
    }
    std::vector<std::vector<int32_t>> out(requests.size());
    while (engine.has_unfinished()) {
      for (FinishedRequest& f : engine.step().finished) out[index.at(f.id)] = std::move(f.output);
    }
    return out;
  }

  static SamplingParams seeded() {
    SamplingParams p;
    p.temperature = 4.f;  // the tiny model's distributions are sharp: flatten them
    p.top_p = 0.98f;
    p.seed = 1234;
    p.max_tokens = 24;
    p.ignore_eos = true;
    return p;
  }
  static SamplingParams with_logprobs(float temperature) {
    SamplingParams p;
    p.temperature = temperature;
    p.logprobs = 2;
    p.max_tokens = 24;
    p.ignore_eos = true;
    return p;
  }

  TempDir dir_{"seeded_sampling"};
  DeviceSamplingRunner* runner_ = nullptr;
  std::unique_ptr<LLM> llm_;
};

const std::vector<int32_t> kPrompt = {11, 22, 33, 44, 55};
const std::vector<int32_t> kOther = {7, 8, 9};

TEST_F(SeededSamplingTest, SameTokensAloneAndBesideALogprobsRequest) {
  const auto alone = run({{kPrompt, seeded()}})[0];
  ASSERT_EQ(alone.size(), 24u);
  EXPECT_GT(runner_->device_steps, 0);
  EXPECT_EQ(runner_->host_steps, 0);  // alone, every step sampled on the "device"

  for (float temperature : {0.f, 1.f}) {
    runner_->host_steps = runner_->device_steps = 0;
    const auto beside = run({{kOther, with_logprobs(temperature)}, {kPrompt, seeded()}});
    EXPECT_GT(runner_->host_steps, 0);  // the logprobs request moved its steps to the host
    EXPECT_EQ(beside[1], alone) << "temperature of the logprobs request " << temperature;
  }
  // And beside a request of its own kind (the device path throughout).
  SamplingParams other = seeded();
  other.seed = 99;
  EXPECT_EQ(run({{kOther, other}, {kPrompt, seeded()}})[1], alone);
}

// The draws really are the seed's: another seed gives other tokens, an unseeded request too.
TEST_F(SeededSamplingTest, OtherSeedsGiveOtherTokens) {
  const auto a = run({{kPrompt, seeded()}})[0];
  SamplingParams p = seeded();
  p.seed = 4321;
  EXPECT_NE(run({{kPrompt, p}})[0], a);
  p.seed.reset();
  EXPECT_NE(run({{kPrompt, p}})[0], a);
}

}  // namespace
}  // namespace shardlm
