// FP8 checkpoints as published (model/fp8_checkpoint.h), on the CPU: each format (fbgemm_fp8,
// compressed-tensors per channel and per tensor, fp8 per tensor) loads with its F8_E4M3 matrices
// and scales, runs dequantised to BF16, and gives exactly the logits of the same model written with
// those weights dequantised (codes times scales, in BF16); and the start-up errors for missing or
// misshapen scales, an unknown quant_method, block-wise scales, and another --quantization.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fp8.h"
#include "engine/llm.h"
#include "model/fp8_checkpoint.h"
#include "safetensors_writer.h"
#include "test_support.h"
#include "tiny_fp8_model.h"

namespace shardlm::testing {
namespace {

std::unique_ptr<LLM> open_cpu(const std::string& path, const std::string& quantization = "") {
  EngineArgs args;
  args.model = path;
  args.device = "cpu";
  args.threads = 2;
  args.quantization = quantization;
  args.max_num_batched_tokens = 64;
  args.max_model_len = 128;
  args.num_kv_blocks = 16;
  args.show_progress = false;
  return std::make_unique<LLM>(args);
}

const std::vector<int32_t> kTokens = {1, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100};

TEST(Fp8Checkpoint, E4m3CodecRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;  // NaN
    const float v = e4m3_to_float(static_cast<uint8_t>(c));
    EXPECT_EQ(e4m3_to_float(float_to_e4m3(v)), v) << c;
  }
  EXPECT_EQ(e4m3_to_float(float_to_e4m3(1000.f)), 448.f);  // saturates
  EXPECT_EQ(e4m3_to_float(float_to_e4m3(-1000.f)), -448.f);
  EXPECT_EQ(e4m3_to_float(float_to_e4m3(1.0625f)), 1.f);  // tie between 1 and 1.125: even code
}

TEST(Fp8Checkpoint, EveryFormatLoadsWithScales) {
  for (Fp8Format f : all_fp8_formats()) {
    SCOPED_TRACE(fp8_format_name(f));
    TempDir dir("fp8-" + fp8_format_name(f));
    write_tiny_fp8_hf_model(dir.path("m"), TinyModelSpec{}, f);
    const auto m = load_model(dir.path("m"));
    const LayerWeights& l0 = m->weights.layers[0];
    EXPECT_EQ(l0.wq.dtype, DType::F8_E4M3);
    EXPECT_EQ(l0.w_gate.dtype, DType::F8_E4M3);
    EXPECT_EQ(l0.w_down.dtype, DType::BF16);  // listed as not converted
    EXPECT_EQ(m->weights.layers[1].w_down.dtype, DType::F8_E4M3);
    EXPECT_EQ(m->weights.tok_embd.dtype, DType::BF16);
    EXPECT_TRUE(has_fp8_weights(*m));
    const float* s = fp8_row_scales(l0.wq);
    EXPECT_GT(s[0], 0.f);
    if (f == Fp8Format::kCompressedTensor || f == Fp8Format::kFp8Tensor) {
      EXPECT_EQ(s[0], s[l0.wq.rows() - 1]);  // one scale repeated per row
    }
  }
}

TEST(Fp8Checkpoint, CpuLogitsEqualTheDequantisedModel) {
  for (Fp8Format f : all_fp8_formats()) {
    SCOPED_TRACE(fp8_format_name(f));
    TempDir dir("fp8-logits-" + fp8_format_name(f));
    write_tiny_fp8_hf_model(dir.path("fp8"), TinyModelSpec{}, f, dir.path("bf16"));
    auto fp8 = open_cpu(dir.path("fp8"));
    auto bf16 = open_cpu(dir.path("bf16"));
    EXPECT_FALSE(has_fp8_weights(fp8->model()));  // dequantised at load on the CPU
    const auto a = fp8->prompt_logits(kTokens), b = bf16->prompt_logits(kTokens);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
  }
}

// Rewrites the FP8 checkpoint in dir with `edit` applied to its config.json.
void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  const std::string path = dir + "/config.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
  edit(j);
  std::ofstream(path) << j.dump();
}

TEST(Fp8Checkpoint, MissingOrMisshapenScalesAreNamed) {
  TempDir dir("fp8-bad");
  // Missing: drop one scale tensor.
  write_tiny_hf_model(dir.path("missing"), TinyModelSpec{},
                      [](std::vector<SafetensorsTensor>& st) {
                        for (auto& t : st) {
                          if (t.name == "model.layers.1.self_attn.k_proj.weight") {
                            for (float& v : t.values) v = e4m3_to_float(float_to_e4m3(v * 100.f));
                            t.dtype = DType::F8_E4M3;
                          }
                        }
                      },
                      {{"quantization_config", {{"quant_method", "fbgemm_fp8"}}}});
  std::string err = error_of([&] { load_model(dir.path("missing")); });
  EXPECT_NE(err.find("model.layers.1.self_attn.k_proj.weight_scale"), std::string::npos) << err;
  EXPECT_NE(err.find("no '"), std::string::npos) << err;
  // Misshapen: 3 scales for a matrix of 32 rows.
  write_tiny_hf_model(
      dir.path("shape"), TinyModelSpec{},
      [](std::vector<SafetensorsTensor>& st) {
        for (auto& t : st) {
          if (t.name == "model.layers.1.self_attn.k_proj.weight") {
            for (float& v : t.values) v = e4m3_to_float(float_to_e4m3(v * 100.f));
            t.dtype = DType::F8_E4M3;
          }
        }
        st.push_back(
            {"model.layers.1.self_attn.k_proj.weight_scale", {3, 1}, {1, 1, 1}, DType::F32});
      },
      {{"quantization_config", {{"quant_method", "fbgemm_fp8"}}}});
  err = error_of([&] { load_model(dir.path("shape")); });
  EXPECT_NE(err.find("model.layers.1.self_attn.k_proj.weight_scale"), std::string::npos) << err;
  EXPECT_NE(err.find("[32, 1]"), std::string::npos) << err;
  // F8_E4M3 weights without a quantization_config.
  write_tiny_hf_model(
      dir.path("noconfig"), TinyModelSpec{},
      [](std::vector<SafetensorsTensor>& st) {
        for (auto& t : st) {
          if (t.name == "model.layers.0.self_attn.q_proj.weight") t.dtype = DType::F8_E4M3;
        }
      },
      nlohmann::json::object());
  err = error_of([&] { load_model(dir.path("noconfig")); });
  EXPECT_NE(err.find("quantization_config"), std::string::npos) << err;
}

TEST(Fp8Checkpoint, UnsupportedConfigsAreNamed) {
  TempDir dir("fp8-config");
  const std::string m = dir.path("m");
  write_tiny_fp8_hf_model(m, TinyModelSpec{}, Fp8Format::kFp8Tensor);
  edit_config(m, [](nlohmann::json& j) { j["quantization_config"]["quant_method"] = "awq"; });
  std::string err = error_of([&] { load_model(m); });
  EXPECT_NE(err.find("quant_method 'awq' is not supported"), std::string::npos) << err;
  edit_config(m, [](nlohmann::json& j) {
    j["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {128, 128}}};
  });
  err = error_of([&] { load_model(m); });
  EXPECT_NE(err.find("weight_block_size"), std::string::npos) << err;
  edit_config(m, [](nlohmann::json& j) {
    j["quantization_config"] = {
        {"quant_method", "compressed-tensors"},
        {"config_groups",
         {{"group_0", {{"weights", {{"num_bits", 4}, {"type", "int"}, {"strategy", "group"}}}}}}}};
  });
  err = error_of([&] { load_model(m); });
  EXPECT_NE(err.find("config_groups.group_0.weights"), std::string::npos) << err;
}

TEST(Fp8Checkpoint, AnotherQuantizationFlagIsRefused) {
  TempDir dir("fp8-flag");
  write_tiny_fp8_hf_model(dir.path("m"), TinyModelSpec{}, Fp8Format::kFbgemm);
  const std::string err = error_of([&] { open_cpu(dir.path("m"), "awq"); });
  EXPECT_NE(err.find("FP8 checkpoint"), std::string::npos) << err;
  EXPECT_NE(err.find("--quantization 'awq'"), std::string::npos) << err;
}

}  // namespace
}  // namespace shardlm::testing
