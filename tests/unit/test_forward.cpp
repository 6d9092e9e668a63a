// Forward-pass consistency: KV-cached decoding, chunked prefill and thread counts must not change
// logits; quantised weights stay close to fp32.
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

const std::vector<int32_t> kIds = {256, 10, 200, 33, 47,  99, 120, 5,  17,
                                   240, 64, 3,   88, 101, 7,  250, 19, 66};

TEST(Forward, ChunkedPrefillEqualsOneShot) {
  TempDir dir("chunk");
  TinyModelSpec spec;
  spec.arch = "qwen3";
  spec.head_dim = 32;
  write_tiny_hf_model(dir.path("m"), spec);
  auto whole = make_session(dir.path("m"), 1, 64);
  auto chunked = make_session(dir.path("m"), 2, 5);
  EXPECT_LT(
      max_abs_diff(whole.llm->prompt_logits(kIds), chunked.llm->prompt_logits(kIds)),
      1e-4);
}

TEST(Forward, DecodeWithCacheEqualsPrefill) {
  // Greedy generation runs one token per step against the KV cache; prompt_logits of the whole
  // sequence must pick the same next tokens.
  TempDir dir("decode");
  TinyModelSpec spec;
  write_tiny_hf_model(dir.path("m"), spec);
  auto s = make_session(dir.path("m"), 2, 64);
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.ignore_eos = true;
  greedy.max_tokens = 12;
  const std::vector<int32_t> out = generate_ids(*s.llm, kIds, greedy);
  ASSERT_EQ(out.size(), 12u);
  std::vector<int32_t> all = kIds;
  all.insert(all.end(), out.begin(), out.end());
  const auto logits = s.llm->prompt_logits(all);
  const size_t vocab = static_cast<size_t>(spec.vocab);
  for (size_t i = 0; i < out.size(); ++i) {
    const float* row = logits.data() + (kIds.size() - 1 + i) * vocab;
    EXPECT_EQ(std::max_element(row, row + vocab) - row, out[i]) << "step " << i;
  }
}

TEST(Forward, QuantisedWeightsStayCloseToF32) {
  TempDir dir("quant");
  TinyModelSpec spec;
  write_tiny_gguf_model(dir.path("f32.gguf"), spec, DType::F32);
  const auto ref = make_session(dir.path("f32.gguf")).llm->prompt_logits(kIds);
  double ref_range = 0;
  for (float v : ref) ref_range = std::max(ref_range, std::abs(double(v)));
  const std::pair<DType, double> cases[] = {{DType::F16, 0.01},
                                            {DType::BF16, 0.03},
                                            {DType::Q8_0, 0.05},
                                            {DType::Q4_0, 0.35},
                                            {DType::Q4_1, 0.3}};
  for (const auto& [dt, tol] : cases) {
    write_tiny_gguf_model(dir.path("q.gguf"), spec, dt);
    const auto got = make_session(dir.path("q.gguf")).llm->prompt_logits(kIds);
    EXPECT_LT(max_abs_diff(ref, got), tol * ref_range) << dtype_name(dt);
  }
}

TEST(Forward, KQuantModelsLoadAndRun) {
  // K-quants need rows that are multiples of 256.
  TempDir dir("kquant");
  TinyModelSpec spec;
  spec.d_model = 256;
  spec.ffn_dim = 512;
  spec.head_dim = 64;
  write_tiny_gguf_model(dir.path("f32.gguf"), spec, DType::F32);
  const auto ref = make_session(dir.path("f32.gguf")).llm->prompt_logits(kIds);
  double ref_range = 0;
  for (float v : ref) ref_range = std::max(ref_range, std::abs(double(v)));
  const std::pair<DType, double> cases[] = {
      {DType::Q6_K, 0.1}, {DType::Q5_K, 0.2}, {DType::Q4_K, 0.35}};
  for (const auto& [dt, tol] : cases) {
    write_tiny_gguf_model(dir.path("k.gguf"), spec, dt);
    const auto got = make_session(dir.path("k.gguf")).llm->prompt_logits(kIds);
    EXPECT_LT(max_abs_diff(ref, got), tol * ref_range) << dtype_name(dt);
  }
}

}  // namespace
}  // namespace shardlm
