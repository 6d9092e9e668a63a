// --quantization fp8 on a whole model against the same model in BF16 on the same GPU: the mean KL
// divergence KL(BF16 || FP8) of the next-token distributions and the top-1 agreement over every
// position of a set of prompts (each followed by BF16's greedy continuation), printed for
// docs/benchmarks.md; and the greedy continuations side by side. The model is the default one (or
// $SHARDLM_PARITY_MODEL, a slice of it on the GPU machine).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "cuda_test_util.h"
#include "engine/llm.h"
#include "test_support.h"

namespace shardlm::testing {
namespace {

const char* const kFp8Prompts[] = {
    "The capital of France is",    "Write a haiku about the sea.",
    "def fibonacci(n):",           "Photosynthesis is the process by which",
    "List three primary colours:", "Once upon a time, in a small village,",
    "The derivative of x^2 is",    "Translate to French: good morning",
};

std::unique_ptr<LLM> open_gpu(const std::string& path, const std::string& quantization) {
  EngineArgs args;
  args.model = path;
  args.device = "cuda";
  args.quantization = quantization;
  args.max_num_batched_tokens = 64;
  args.max_model_len = 256;
  args.num_kv_blocks = 16;
  args.show_progress = false;
  return std::make_unique<LLM>(args);
}

std::vector<double> log_softmax(const float* row, size_t n) {
  const double m = *std::max_element(row, row + n);
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += std::exp(double(row[i]) - m);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = double(row[i]) - m - std::log(s);
  return out;
}

TEST(CudaFp8Model, LogitsCloseToBf16) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const char* env = std::getenv("SHARDLM_PARITY_MODEL");
  const std::string path = env && *env ? env : default_model_if_present();
  if (path.empty()) GTEST_SKIP() << "default model not cached (scripts/fetch_default_model.sh)";
  auto bf16 = open_gpu(path, "");
  auto fp8 = open_gpu(path, "fp8");
  const size_t vocab = static_cast<size_t>(bf16->model().config.vocab_size);
  double kl_sum = 0;
  int64_t positions = 0, top1 = 0, greedy_same = 0, greedy_total = 0;
  for (const char* text : kFp8Prompts) {
    auto seq = bf16->tokenizer().encode(text, true, true);
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.max_tokens = 32;
    const auto a = generate_ids(*bf16, seq, p), b = generate_ids(*fp8, seq, p);
    size_t t = 0;
    while (t < a.size() && t < b.size() && a[t] == b[t]) ++t;
    greedy_same += static_cast<int64_t>(t);
    greedy_total += static_cast<int64_t>(a.size());
    seq.insert(seq.end(), a.begin(), a.end());
    const auto la = bf16->prompt_logits(seq), lb = fp8->prompt_logits(seq);
    ASSERT_EQ(la.size(), lb.size());
    for (size_t pos = 0; pos < seq.size(); ++pos) {
      const float *ra = la.data() + pos * vocab, *rb = lb.data() + pos * vocab;
      const auto pa = log_softmax(ra, vocab), pb = log_softmax(rb, vocab);
      double kl = 0;
      for (size_t i = 0; i < vocab; ++i) kl += std::exp(pa[i]) * (pa[i] - pb[i]);
      kl_sum += kl;
      top1 += std::max_element(ra, ra + vocab) - ra == std::max_element(rb, rb + vocab) - rb;
      ++positions;
    }
  }
  const double mean_kl = kl_sum / double(positions);
  const double agree = double(top1) / double(positions);
  std::cout << "[fp8 quality] " << path << ": mean KL(BF16 || FP8) " << mean_kl
            << " nats, top-1 agreement " << 100 * agree << "% over " << positions
            << " positions of " << std::size(kFp8Prompts) << " prompts; greedy tokens identical "
            << greedy_same << "/" << greedy_total << " before the first divergence\n";
  // Published FP8 (per-channel weights, per-token activations) checkpoints stay within a few
  // hundredths of a nat of BF16; a wrong scale or layout gives whole nats and chance agreement.
  EXPECT_LT(mean_kl, 0.1);
  EXPECT_GT(agree, 0.85);
}

}  // namespace
}  // namespace shardlm::testing
