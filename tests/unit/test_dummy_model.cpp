// --load-format dummy: presets with the public models' shapes, config.json files and directories,
// deterministic weights (every rank of a group must generate the same), and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"
#include "engine/llm.h"
#include "model/dummy_model.h"
#include "model/hf_config.h"
#include "model/model_presets.h"
#include "model/weight_set_of.h"
#include "model/weights_fingerprint.h"
#include "parallel/group.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

// Parameters of a llama-style decoder with this config, as Hugging Face counts them.
int64_t parameter_count(const ModelConfig& c) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.ffn_dim, v = c.vocab_size;
  int64_t layer = d * q + 2 * d * kv + q * d + 3 * d * f + 2 * d;
  if (c.qkv_bias) layer += q + 2 * kv;
  if (c.qk_norm) layer += 2 * c.head_dim;
  return v * d * (c.tied_embeddings ? 1 : 2) + c.n_layers * layer + d;
}

ModelConfig preset_config(const std::string& name) {
  const auto j = model_preset(name);
  EXPECT_TRUE(j.has_value()) << name;
  return hf_config_from_json(*j, name);
}

std::string write_config(const TempDir& dir, const nlohmann::json& j) {
  const std::string path = dir.path("config.json");
  std::ofstream(path) << j.dump();
  return path;
}

nlohmann::json tiny_config() {
  return {{"model_type", "llama"},       {"hidden_size", 64},
          {"intermediate_size", 96},     {"num_hidden_layers", 2},
          {"num_attention_heads", 4},    {"num_key_value_heads", 2},
          {"vocab_size", 300},           {"max_position_embeddings", 256},
          {"tie_word_embeddings", false}};
}

TEST(DummyModel, PresetsHaveThePublicParameterCounts) {
  // The totals Hugging Face reports for these checkpoints.
  EXPECT_EQ(parameter_count(preset_config("llama-3.1-8b")), 8030261248);
  EXPECT_EQ(parameter_count(preset_config("llama-3.2-1b")), 1235814400);
  EXPECT_EQ(parameter_count(preset_config("qwen2.5-7b")), 7615616512);
  EXPECT_EQ(parameter_count(preset_config("smollm2-135m")), 134515008);
  const ModelConfig c = preset_config("llama-3.1-8b");
  EXPECT_EQ(c.n_kv_heads, 8);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.rope_freq_factors.size(), 64u);  // llama3 rope scaling
  EXPECT_TRUE(preset_config("qwen3-8b").qk_norm);
  EXPECT_TRUE(preset_config("qwen2.5-7b").qkv_bias);
}

// The weight list a device backend uploads names each layer's Q, K and V as one adjacent run (a
// GPU places them end to end and multiplies them as one matrix), in the order the ops take them.
TEST(DummyModel, WeightSetListsEachLayersQkvAsOneRun) {
  TempDir dir("dummy-runs");
  const auto m = load_dummy_model(write_config(dir, tiny_config()));
  const WeightSet s = weight_set_of(m->config, m->weights);
  ASSERT_EQ(s.adjacent.size(), m->weights.layers.size());
  for (size_t l = 0; l < s.adjacent.size(); ++l) {
    const auto& run = s.adjacent[l];
    const auto& L = m->weights.layers[l];
    ASSERT_EQ(run.size(), 3u);
    EXPECT_EQ(s.matrices[run[0]].data, L.wq.data) << "layer " << l;
    EXPECT_EQ(s.matrices[run[1]].data, L.wk.data) << "layer " << l;
    EXPECT_EQ(s.matrices[run[2]].data, L.wv.data) << "layer " << l;
  }
}

TEST(DummyModel, ConfigFileGivesBoundBf16Weights) {
  TempDir dir("dummy-cfg");
  const auto m = load_dummy_model(write_config(dir, tiny_config()));
  EXPECT_EQ(m->format, "dummy");
  EXPECT_EQ(m->config.d_model, 64);
  EXPECT_FALSE(m->config.tied_embeddings);
  ASSERT_EQ(m->weights.layers.size(), 2u);
  const TensorView& wq = m->weights.layers[1].wq;
  EXPECT_EQ(wq.dtype, DType::BF16);
  EXPECT_EQ(wq.ne[0], 64);
  EXPECT_EQ(wq.rows(), 64);
  // Uniform in +-sqrt(3 / 64): bounded, centred, not constant.
  const auto* bits = static_cast<const uint16_t*>(wq.data);
  double sum = 0, sq = 0, bound = std::sqrt(3.0 / 64) * 1.01;
  for (int64_t i = 0; i < wq.numel(); ++i) {
    const double x = bf16_to_fp32(bits[i]);
    ASSERT_LE(std::abs(x), bound);
    sum += x, sq += x * x;
  }
  const double n = static_cast<double>(wq.numel());
  EXPECT_NEAR(sum / n, 0, 0.01);
  EXPECT_NEAR(sq / n, 1.0 / 64, 0.2 / 64);  // variance of U(-a, a) is a^2 / 3
  EXPECT_EQ(m->weights.layers[0].attn_norm[5], 1.f);
  EXPECT_EQ(m->tokenizer.tokens.size(), 300u);  // the byte-level vocabulary, padded
}

TEST(DummyModel, EveryLoadGeneratesTheSameWeights) {
  TempDir dir("dummy-same");
  const std::string cfg = write_config(dir, tiny_config());
  const auto a = load_dummy_model(cfg);
  const auto b = load_dummy_model(cfg);
  const TensorView& x = a->weights.layers[0].w_down;
  const TensorView& y = b->weights.layers[0].w_down;
  ASSERT_EQ(x.nbytes(), y.nbytes());
  EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes()), 0);
  EXPECT_NE(std::memcmp(x.data, a->weights.layers[0].w_up.data, 64), 0);  // tensors differ
  EXPECT_EQ(weights_fingerprint(*a).str(), weights_fingerprint(*b).str());
}

TEST(DummyModel, DirectoryKeepsItsTokenizerAndTemplate) {
  TempDir dir("dummy-dir");
  TinyModelSpec spec;
  write_tiny_hf_model(dir.path("m"), spec);
  const auto real = load_model(dir.path("m"));
  const auto dummy = load_model(dir.path("m"), "dummy");
  EXPECT_EQ(dummy->tokenizer.tokens, real->tokenizer.tokens);
  EXPECT_EQ(dummy->chat_template, real->chat_template);
  EXPECT_EQ(dummy->config.d_model, real->config.d_model);
  EXPECT_EQ(dummy->weights.tok_embd.dtype, DType::BF16);
}

// The engine on the CPU over dummy weights for `model` (a preset or a config.json).
EngineArgs dummy_cpu_args(const std::string& model) {
  EngineArgs args;
  args.model = model;
  args.load_format = "dummy";
  args.device = "cpu";
  args.threads = 2;
  args.show_progress = false;
  return args;
}

TEST(DummyModel, RunsThroughTheEngine) {
  TempDir dir("dummy-run");
  const EngineArgs args = dummy_cpu_args(write_config(dir, tiny_config()));
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.max_tokens = 8;
  greedy.ignore_eos = true;
  std::vector<std::vector<int32_t>> outputs;
  for (int run = 0; run < 2; ++run) {
    LLM llm(args);
    const auto out = llm.generate({"hello"}, greedy);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].token_ids.size(), 8u);
    outputs.push_back(out[0].token_ids);
  }
  EXPECT_EQ(outputs[0], outputs[1]);
}

// SHARDLM_DUMMY_WEIGHTS=<GGUF block type>: matrices whose rows fit the type's blocks become random
// blocks of it (values within about the BF16 bound), the others stay BF16; the CPU engine runs them
// to finite logits; an unknown type is named.
TEST(DummyModel, BlockTypeWeightsFromTheEnvironment) {
  TempDir dir("dummy-quant");
  auto cfg = tiny_config();
  cfg["hidden_size"] = 256;
  cfg["intermediate_size"] = 512;
  cfg["num_attention_heads"] = 4;
  const std::string path = write_config(dir, cfg);
  for (const char* type : {"Q4_K", "Q8_0", "Q6_K"}) {
    setenv("SHARDLM_DUMMY_WEIGHTS", type, 1);
    const auto m = load_dummy_model(path);
    const TensorView& down = m->weights.layers[0].w_down;
    EXPECT_EQ(dtype_name(down.dtype), type);
    std::vector<float> row(static_cast<size_t>(down.ne[0]));
    cpu::dequantize_row(down.dtype, down.row(3), row.data(), down.ne[0]);
    double sq = 0;
    for (float v : row) {
      ASSERT_TRUE(std::isfinite(v)) << type;
      ASSERT_LE(std::abs(v), 2.01 * std::sqrt(3.0 / 512)) << type;
      sq += double(v) * v;
    }
    EXPECT_GT(sq, 0) << type;
    auto rows = std::make_unique<LLM>(dummy_cpu_args(path));
    const auto logits = rows->prompt_logits({1, 2, 3, 4});
    for (float v : logits) ASSERT_TRUE(std::isfinite(v)) << type;
  }
  setenv("SHARDLM_DUMMY_WEIGHTS", "Q3_K", 1);
  try {
    load_dummy_model(path);
    ADD_FAILURE() << "Q3_K accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SHARDLM_DUMMY_WEIGHTS is 'Q3_K'"), std::string::npos);
  }
  unsetenv("SHARDLM_DUMMY_WEIGHTS");
}

// SHARDLM_DUMMY_WEIGHTS=F8_E4M3: every matrix but the embedding and output projection is an FP8
// checkpoint's (E4M3 codes without NaN codes, a scale per tensor, values within the BF16 bound),
// the routed experts included; the CPU keeps them in FP8 (F8_E4M3_G128) as it keeps such a
// checkpoint's, and its logits are those of the dequantised copies within the FP8 path's last bits.
TEST(DummyModel, Fp8WeightsAreAnFp8CheckpointsMatrices) {
  TempDir dir("dummy-fp8");
  const std::string path = write_config(dir, {{"model_type", "qwen3_moe"},
                                              {"hidden_size", 256},
                                              {"intermediate_size", 512},
                                              {"moe_intermediate_size", 128},
                                              {"num_experts", 8},
                                              {"num_experts_per_tok", 2},
                                              {"norm_topk_prob", true},
                                              {"num_hidden_layers", 2},
                                              {"num_attention_heads", 4},
                                              {"num_key_value_heads", 2},
                                              {"head_dim", 64},
                                              {"vocab_size", 300},
                                              {"max_position_embeddings", 256},
                                              {"tie_word_embeddings", false}});
  setenv("SHARDLM_DUMMY_WEIGHTS", "F8_E4M3", 1);
  const auto m = load_dummy_model(path);
  const auto& L = m->weights.layers[1];
  EXPECT_EQ(m->weights.tok_embd.dtype, DType::BF16);
  EXPECT_EQ(m->weights.output.dtype, DType::BF16);
  for (const TensorView* w : {&L.wq, &L.wo, &L.moe.gate[0], &L.moe.down[7]}) {
    SCOPED_TRACE(w->name);
    ASSERT_EQ(w->dtype, DType::F8_E4M3);
    ASSERT_NE(w->fp8_scales, nullptr);
    const float bound = std::sqrt(3.f / static_cast<float>(w->ne[0]));
    double sq = 0;
    for (int64_t i = 0; i < w->ne[0]; ++i) {
      const uint8_t code = w->row(1)[i];
      ASSERT_NE(code & 0x7f, 0x7f) << "a NaN code";
      const float v = e4m3_to_float(code) * w->fp8_scales->at(1, i);
      ASSERT_LE(std::abs(v), bound * 1.0001f);
      sq += double(v) * v;
    }
    EXPECT_GT(sq, 0);
  }
  std::vector<std::vector<float>> logits;
  for (const char* groups : {"1", "0"}) {  // kept in FP8, then dequantised to BF16
    setenv("SHARDLM_CPU_FP8_GROUPS", groups, 1);
    LLM llm(dummy_cpu_args(path));
    EXPECT_EQ(llm.rank().weights().weights.layers[1].moe.gate[0].dtype,
              groups[0] == '1' ? DType::F8_E4M3_G128 : DType::BF16);
    logits.push_back(llm.prompt_logits({1, 2, 3, 4}));
    for (float v : logits.back()) ASSERT_TRUE(std::isfinite(v));
  }
  unsetenv("SHARDLM_CPU_FP8_GROUPS");
  unsetenv("SHARDLM_DUMMY_WEIGHTS");
  double num = 0, den = 0;
  for (size_t i = 0; i < logits[0].size(); ++i) {
    num += (double(logits[0][i]) - logits[1][i]) * (double(logits[0][i]) - logits[1][i]);
    den += double(logits[1][i]) * logits[1][i];
  }
  EXPECT_LT(std::sqrt(num / den), 5e-3);
}

TEST(DummyModel, ErrorsNameWhatToPass) {
  EXPECT_NE(error_of([] { load_dummy_model("llama-9000"); }).find("llama-3.1-8b"),
            std::string::npos);
  EXPECT_NE(error_of([] { load_dummy_model(""); }).find("needs --model"), std::string::npos);
  EXPECT_NE(error_of([] { load_model("x", "pt"); }).find("unknown --load-format 'pt'"),
            std::string::npos);
  TempDir dir("dummy-bad");
  nlohmann::json bad = tiny_config();
  bad.erase("num_hidden_layers");
  const std::string msg = error_of([&] { load_dummy_model(write_config(dir, bad)); });
  EXPECT_NE(msg.find("config.json': missing 'num_hidden_layers'"), std::string::npos) << msg;
}

}  // namespace
}  // namespace shardlm
