// Logit parity against PyTorch/transformers (reference dumps made by scripts/gen_logit_refs.py):
// the three tiny HF-format models, built by the test through the user's loading path, and the
// default SmolLM2 Q4_1 model (when cached; CI fetches it).
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/cpu/quant.h"
#include "logit_ref.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

nlohmann::json read_ref(const std::string& name) {
  return read_logit_ref(std::string(SHARDLM_TEST_DATA) + "/logits/" + name);
}

// Replaces every weight matrix by an fp32 copy, so matmuls run without activation quantisation.
void dequantise_all(Model& m, std::deque<std::vector<float>>& store) {
  auto widen = [&](TensorView& t) {
    auto& v = store.emplace_back(static_cast<size_t>(t.numel()));
    for (int64_t r = 0; r < t.rows(); ++r) {
      cpu::dequantize_row(t.dtype, t.row(r), v.data() + r * t.ne[0], t.ne[0]);
    }
    t.dtype = DType::F32;
    t.data = v.data();
  };
  auto& w = m.weights;
  widen(w.tok_embd);
  w.output = w.tok_embd;
  for (auto& l : w.layers) {
    for (TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) widen(*t);
  }
}

// Tolerance: fp32 compute on both sides over BF16 weights; differences are accumulation order only.
constexpr double kTinyTolerance = 2e-3;

TEST(LogitParity, TinyModelsMatchTransformers) {
  for (const auto& [name, spec] : reference_tiny_models()) {
    const auto ref = read_ref("tiny_" + name + ".json");
    TempDir dir("parity-" + name);
    write_tiny_hf_model(dir.path("m"), spec);
    auto s = make_session(dir.path("m"), 2, 8);  // batch 8 also exercises chunked prefill
    const auto tokens = ref["tokens"].get<std::vector<int32_t>>();
    const auto logits = s.llm->prompt_logits(tokens);
    const size_t vocab = ref["vocab"].get<size_t>();
    double max_err = 0, max_ref = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
      const auto row = ref["logits"][t].get<std::vector<double>>();
      for (size_t v = 0; v < vocab; ++v) {
        max_err = std::max(max_err, std::abs(row[v] - logits[t * vocab + v]));
        max_ref = std::max(max_ref, std::abs(row[v]));
      }
    }
    EXPECT_LT(max_err, kTinyTolerance * std::max(1.0, max_ref)) << name << " max |ref| " << max_ref;
  }
}

// The default model runs quantised matmuls (activations quantised to 8-bit blocks, as llama.cpp
// does), while the reference runs fp32 on dequantised weights. Measured on the committed prompts:
// mean |error| of probe logits 0.18-0.21 and max 0.7-0.95 (logits span ~25), moving within that
// range with the summation order of unrelated fp32 ops (a rounding flip in one activation block
// propagates through 30 layers); with the 30 layers in fp32 the mean drops to 0.045, so the error
// is the 8-bit activations of the Q4_1 layers. Tolerances: mean < 0.3, max < 1.5, and our top-1
// token equals the reference top-1 at >= 90% of positions.
TEST(LogitParity, DefaultModelMatchesTransformers) {
  const std::string path = default_model_if_present();
  if (path.empty()) GTEST_SKIP() << "default model not cached";
  const auto ref = read_ref("smollm2_135m_q4_1.json");
  auto s = make_session(path, 2, 64, 128);
  const size_t vocab = static_cast<size_t>(s.model->config.vocab_size);
  for (const auto& c : ref["cases"]) {
    EXPECT_EQ(s.tokenizer->encode(c["prompt"].get<std::string>(), false),
              c["ids"].get<std::vector<int32_t>>());
  }
  const ProbeAgreement a = probe_agreement(
      ref, vocab, [&](const std::vector<int32_t>& ids) { return s.llm->prompt_logits(ids); });
  RecordProperty("mean_abs_error", std::to_string(a.mean_err));
  std::printf("default model: mean |err| %.4f, max |err| %.4f, top-1 agreement %d/%d\n", a.mean_err,
              a.max_err, a.top1_same, a.positions);
  EXPECT_LT(a.mean_err, 0.3);
  EXPECT_LT(a.max_err, 1.5);
  EXPECT_GE(a.top1_same, a.positions * 9 / 10);
}

// With every weight matrix dequantised to fp32 up front, our forward pass is the same computation
// as the reference (fp32 on dequantised weights): logits must agree tightly. This isolates the
// model code from the quantised-matmul noise measured above.
TEST(LogitParity, DefaultModelDequantisedMatchesTightly) {
  const std::string path = default_model_if_present();
  if (path.empty()) GTEST_SKIP() << "default model not cached";
  const auto ref = read_ref("smollm2_135m_q4_1.json");
  std::deque<std::vector<float>> store;
  auto s = make_session(path, 2, 64, 128, [&](Model& m) { dequantise_all(m, store); });
  const auto probe = ref["probe_ids"].get<std::vector<int32_t>>();
  const size_t vocab = static_cast<size_t>(s.model->config.vocab_size);
  double max_err = 0;
  for (const auto& c : ref["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto logits = s.llm->prompt_logits(ids);
    for (size_t t = 0; t < ids.size(); ++t) {
      for (size_t k = 0; k < probe.size(); ++k) {
        max_err = std::max(max_err, std::abs(logits[t * vocab + static_cast<size_t>(probe[k])] -
                                             c["positions"][t]["probe_logits"][k].get<double>()));
      }
    }
  }
  EXPECT_LT(max_err, 0.02);
}

// Greedy decoding on the dequantised weights matches the reference token for token for all 32
// tokens of each of the four prompts (with quantised activations the paths split after a few
// tokens where two candidates are nearly tied, as they do for llama.cpp).
TEST(LogitParity, DefaultModelGreedyMatchesTransformers) {
  const std::string path = default_model_if_present();
  if (path.empty()) GTEST_SKIP() << "default model not cached";
  const auto ref = read_ref("smollm2_135m_q4_1.json");
  std::deque<std::vector<float>> store;
  auto s = make_session(path, 2, 64, 128, [&](Model& m) { dequantise_all(m, store); });
  for (const auto& c : ref["cases"]) {
    const auto want = c["greedy"].get<std::vector<int32_t>>();
    SamplingParams greedy;
    greedy.temperature = 0;
    greedy.ignore_eos = true;
    greedy.max_tokens = static_cast<int>(want.size());
    const std::vector<int32_t> got = generate_ids(*s.llm, c["ids"].get<std::vector<int32_t>>(), greedy);
    EXPECT_EQ(got, want) << c["prompt"];
  }
}

}  // namespace
}  // namespace shardlm
