// One sampler on every path: a seeded sampled request gives the same tokens alone and beside a
// request that asks for logprobs. The engine samples a step on the device when every request in it
// can be (Backend::sample), and on the host otherwise (logprobs need the whole row); the runner
// here stands in for a device runner on the CPU (its execute_sampled is Backend::sample's
// reference), so the test sees both paths without a GPU: alone, the seeded request is sampled on
// the "device"; beside a logprobs request, on the host. A grammar-constrained request samples on
// the "device" too (its mask travels in RowSampling::allowed), with the host path's tokens.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <string>

#include "backend/cpu/sample.h"
#include "engine/grammar.h"
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
  void execute_sampled(const ForwardBatch& batch, const RowSampling* params, int32_t* tokens,
                       const std::function<void()>& complete_rows) override {
    ++device_steps;
    const auto rows = static_cast<int64_t>(batch.logit_rows.size());
    logits_.resize(static_cast<size_t>(rows * vocab_size()));
    inner_->execute(batch, logits_.data());
    if (complete_rows) complete_rows();  // as Transformer::forward_sampled: after the forward
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

// Structured output on the device path: the grammar's mask goes with each row, so a constrained
// request's steps all sample on the "device", its output matches the regex, and its tokens equal
// the host path's (taken when a logprobs request shares the batch), greedy and seeded, 64 at once.
TEST_F(SeededSamplingTest, ConstrainedRequestsSampleOnTheDeviceAsOnTheHost) {
  const std::string re = "[a-f]{2,4}-[0-9]{1,3}(x|yz)";
  GrammarCompiler compiler(llm_->tokenizer(), llm_->runner().vocab_size(),
                           llm_->engine().config().eos_token_ids);
  const auto grammar = compiler.compile({GrammarSpec::Kind::kRegex, re, {}});
  std::vector<std::pair<std::vector<int32_t>, SamplingParams>> requests;
  for (int i = 0; i < 64; ++i) {
    SamplingParams p;
    p.temperature = i % 2 ? 1.5f : 0.f;
    p.seed = uint64_t(i);
    p.max_tokens = 48;
    p.grammar = grammar;
    requests.push_back({{1, int32_t(10 + i % 50), int32_t(70 + i % 30)}, p});
  }
  const auto device = run(requests);
  EXPECT_GT(runner_->device_steps, 0);
  EXPECT_EQ(runner_->host_steps, 0);
  std::set<std::string> distinct;
  for (const auto& tokens : device) {
    std::string text = llm_->tokenizer().decode(tokens);
    // The tiny model's EOS is not a control token: its text ends the output.
    if (const auto eos = text.find("<|eos|>"); eos != std::string::npos) text.resize(eos);
    EXPECT_TRUE(std::regex_match(text, std::regex(re))) << text;
    distinct.insert(text);
  }
  EXPECT_GE(distinct.size(), 8u);  // seeded rows really drew
  runner_->host_steps = runner_->device_steps = 0;
  auto with_host = requests;
  with_host.insert(with_host.begin(), {kOther, with_logprobs(0.f)});
  const auto host = run(with_host);
  EXPECT_GT(runner_->host_steps, 0);
  for (size_t i = 0; i < device.size(); ++i) EXPECT_EQ(host[i + 1], device[i]) << "request " << i;
}

}  // namespace
}  // namespace shardlm
