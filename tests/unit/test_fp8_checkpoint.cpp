// FP8 checkpoints as published (model/fp8_checkpoint.h, fp8_at_bind.h), on the CPU: each format
// (fbgemm_fp8, compressed-tensors per channel, per tensor and per block, fp8 per tensor and per
// block as DeepSeek-V3 ships) loads with its F8_E4M3 matrices and scales, runs dequantised to
// BF16, and gives exactly the logits of the same model written with those weights dequantised
// (codes times scales, in BF16), for dense, mixture-of-experts and latent-attention architectures;
// and the start-up errors for missing or misshapen scales, unreadable quantization configs and
// another --quantization.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/fp16.h"
#include "core/fp8.h"
#include "engine/llm.h"
#include "formats/safetensors_file.h"
#include "model/fp8_at_bind.h"
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
    auto m = load_model(dir.path("m"));
    const LayerWeights& l0 = m->weights.layers[0];
    EXPECT_EQ(m->weights.tok_embd.dtype, DType::BF16);
    EXPECT_EQ(l0.w_down.dtype, DType::BF16);  // listed as not converted
    // Bound as the file holds them: the codes (no copy) and their scales.
    const TensorView* l1_down = &m->weights.layers[1].w_down;
    for (const TensorView* w : {&l0.wq, &l0.w_gate, l1_down}) {
      EXPECT_EQ(w->dtype, DType::F8_E4M3);
      ASSERT_NE(w->fp8_scales, nullptr);
    }
    EXPECT_TRUE(m->generated.empty());
    EXPECT_TRUE(has_checkpoint_fp8(*m));
    EXPECT_EQ(checkpoint_fp8_runs_as_rows(*m), !fp8_block_wise(f));
  }
}

// The FP8 checkpoint of `spec` in format f against the same model with its FP8 matrices written
// dequantised: the prompt's logits on the CPU, bit for bit; or, where the CPU keeps the matrices
// in FP8 (`kept`: the scale applies to each 128 columns' sum, the BF16 copy rounds code x scale
// first), within that rounding's error, and every position's top token the same. Returns the
// normalised error (0 where they are equal).
double expect_logits_equal_dequantised(const TinyModelSpec& spec, Fp8Format f, bool kept = false) {
  SCOPED_TRACE(spec.arch + " " + fp8_format_name(f));
  struct Switch {  // the CPU's default keeps them; SHARDLM_CPU_FP8_GROUPS=0 dequantises them
    explicit Switch(bool kept) { setenv("SHARDLM_CPU_FP8_GROUPS", kept ? "1" : "0", 1); }
    ~Switch() { unsetenv("SHARDLM_CPU_FP8_GROUPS"); }
  } keep_or_not(kept);
  TempDir dir("fp8-logits-" + spec.arch + "-" + fp8_format_name(f));
  write_tiny_fp8_hf_model(dir.path("fp8"), spec, f, dir.path("bf16"));
  // The checkpoint holds its experts and latent-attention projections in FP8, its routers not.
  std::map<std::string, int> fp8_kinds;
  for (const TensorView& t : SafetensorsFile(dir.path("fp8") + "/model.safetensors").tensors()) {
    if (t.dtype != DType::F8_E4M3) continue;
    for (const char* kind : {"experts.", "shared_expert", "kv_b_proj", "q_a_proj", "mlp.gate."}) {
      if (t.name.find(kind) != std::string::npos) ++fp8_kinds[kind];
    }
  }
  EXPECT_EQ(fp8_kinds["experts."] > 0, spec.n_experts > 0);
  EXPECT_EQ(fp8_kinds["shared_expert"] > 0, spec.n_shared > 0 || spec.shared_ffn > 0);
  EXPECT_EQ(fp8_kinds["kv_b_proj"] > 0, spec.is_mla());
  EXPECT_EQ(fp8_kinds["q_a_proj"] > 0, spec.q_lora > 0);
  EXPECT_EQ(fp8_kinds["mlp.gate."], 0);
  auto fp8 = open_cpu(dir.path("fp8"));
  auto bf16 = open_cpu(dir.path("bf16"));
  EXPECT_TRUE(has_checkpoint_fp8(fp8->model()));  // each rank dequantises what it holds
  const auto a = fp8->prompt_logits(kTokens), b = bf16->prompt_logits(kTokens);
  EXPECT_EQ(a.size(), b.size());
  EXPECT_FALSE(a.empty());
  if (a.size() != b.size() || a.empty()) return -1;
  if (!kept) {
    for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << i;
    return 0;
  }
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * double(a[i] - b[i]);
    norm += b[i] * double(b[i]);
  }
  EXPECT_LT(std::sqrt(diff / norm), 5e-3) << "normalised error";
  std::printf("%s %s, FP8 kept: logits' normalised error %.2e against the BF16 copy\n",
              spec.arch.c_str(), fp8_format_name(f).c_str(), std::sqrt(diff / norm));
  const size_t vocab = a.size() / kTokens.size();
  for (size_t p = 0; p < kTokens.size(); ++p) {
    const auto top = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + p * vocab, v.begin() + (p + 1) * vocab) - v.begin();
    };
    EXPECT_EQ(top(a), top(b)) << "position " << p;
  }
  return std::sqrt(diff / norm);
}

TEST(Fp8Checkpoint, CpuLogitsEqualTheDequantisedModel) {
  for (Fp8Format f : all_fp8_formats()) expect_logits_equal_dequantised(TinyModelSpec{}, f);
}

// Mixture-of-experts and latent-attention checkpoints (DeepSeek-V3/R1 and Qwen3-*-FP8 as published
// are block-wise): every expert, shared expert and MLA projection in FP8, the routers in BF16.
TEST(Fp8Checkpoint, MoeAndLatentAttentionLogitsEqualTheDequantisedModel) {
  for (const char* arch :
       {"deepseek_v3", "deepseek_v2", "qwen3_moe", "qwen2_moe", "mixtral", "ernie4_5_moe"}) {
    TinyModelSpec spec = tiny_moe_spec(arch);
    spec.n_layers = 3;
    const std::string a = arch;
    if (a != "mixtral" && a != "qwen2_moe") spec.dense_layers = {0};  // a dense first layer
    expect_logits_equal_dequantised(spec, Fp8Format::kFp8Block);
  }
  for (Fp8Format f : {Fp8Format::kFbgemm, Fp8Format::kCompressedBlock, Fp8Format::kFp8Tensor}) {
    expect_logits_equal_dequantised(tiny_moe_spec("deepseek_v3"), f);
    expect_logits_equal_dequantised(tiny_moe_spec("qwen3_moe"), f);
  }
}

// The same with the CPU keeping the matrices in FP8 (its default, F8_E4M3_G128): every format
// whose scales fit groups of 128 columns (the tiny blocks of 32 x 48 do not, and stay BF16),
// dense, mixture-of-experts and latent attention, logits within rounding.
// Kept ones differ from the BF16 copy in the last bits, so a zero error would mean they were not.
TEST(Fp8Checkpoint, CpuLogitsMatchTheDequantisedModelWithFp8Kept) {
  for (Fp8Format f : all_fp8_formats()) {
    const double err = expect_logits_equal_dequantised(TinyModelSpec{}, f, true);
    if (!fp8_block_wise(f)) EXPECT_GT(err, 0) << fp8_format_name(f);
    if (fp8_block_wise(f)) EXPECT_EQ(err, 0) << fp8_format_name(f) << ": blocks of 48 columns";
  }
  for (Fp8Format f : {Fp8Format::kFbgemm, Fp8Format::kFp8Tensor}) {
    for (const char* arch : {"deepseek_v3", "qwen3_moe"}) {
      EXPECT_GT(expect_logits_equal_dequantised(tiny_moe_spec(arch), f, true), 0) << arch;
    }
  }
}

TEST(Fp8Checkpoint, BlockDequantisationMatchesCodesTimesScales) {
  // 600 x 8200 codes: partial blocks at both edges, and more rows than one thread takes.
  const int64_t rows = 600, cols = 8200;
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < codes.size(); ++i) {
    codes[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
    if ((codes[i] & 0x7f) == 0x7f) codes[i] = 0x11;  // no NaN codes
  }
  TensorView w;
  w.name = "w";
  w.dtype = DType::F8_E4M3;
  w.ne = {cols, rows, 1, 1};
  w.n_dims = 2;
  w.data = codes.data();
  Fp8Scales s;
  w.fp8_scales = &s;
  s.block_rows = 128;
  s.block_cols = 128;
  s.col_blocks = (cols + 127) / 128;
  for (int64_t i = 0; i < 5 * s.col_blocks; ++i) s.v.push_back(0.001f * static_cast<float>(i + 1));
  std::vector<uint16_t> out(codes.size());
  dequantise_fp8_matrix(w, out.data());
  for (int64_t r = 0; r < rows; r += 7) {
    for (int64_t c = 0; c < cols; c += 3) {
      const float scale = 0.001f * static_cast<float>((r / 128) * s.col_blocks + c / 128 + 1);
      const float want = e4m3_to_float(codes[size_t(r * cols + c)]) * scale;
      ASSERT_EQ(out[size_t(r * cols + c)], fp32_to_bf16(want)) << r << " " << c;
    }
  }
  // A view of rows [200, 400) (a tensor-parallel slice) and columns [256, 640) of it (a
  // row-parallel slice): the same values.
  TensorView rows_view = w;
  rows_view.data = w.row(200);
  rows_view.fp8_row0 = 200;
  rows_view.ne[1] = 200;
  std::vector<uint16_t> part(static_cast<size_t>(200 * 384));
  dequantise_fp8_columns(rows_view, 256, 384, part.data());
  for (int64_t r = 0; r < 200; ++r) {
    for (int64_t c = 0; c < 384; ++c) {
      ASSERT_EQ(part[size_t(r * 384 + c)], out[size_t((200 + r) * cols + 256 + c)]) << r << c;
    }
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

// k_proj of the tiny llama ([32, 64]) in FP8 with the given scale tensors, under a block config.
void write_block_fp8_k_proj(const std::string& dir, std::vector<SafetensorsTensor> scales) {
  write_tiny_hf_model(
      dir, TinyModelSpec{},
      [&scales](std::vector<SafetensorsTensor>& st) {
        for (auto& t : st) {
          if (t.name == "model.layers.1.self_attn.k_proj.weight") {
            for (float& v : t.values) v = e4m3_to_float(float_to_e4m3(v * 100.f));
            t.dtype = DType::F8_E4M3;
          }
        }
        st.insert(st.end(), scales.begin(), scales.end());
      },
      {{"quantization_config", {{"quant_method", "fp8"}, {"weight_block_size", {32, 48}}}}});
}

TEST(Fp8Checkpoint, MissingOrMisshapenBlockScalesAreNamed) {
  TempDir dir("fp8-block-bad");
  const std::string name = "model.layers.1.self_attn.k_proj.weight_scale_inv";
  write_block_fp8_k_proj(dir.path("ok"), {{name, {1, 2}, {0.01f, 0.02f}, DType::F32}});
  EXPECT_NE(load_model(dir.path("ok"))->weights.layers[1].wk.fp8_scales, nullptr);
  write_block_fp8_k_proj(dir.path("missing"), {});
  std::string err = error_of([&] { load_model(dir.path("missing")); });
  EXPECT_NE(err.find("has no '" + name + "' tensor"), std::string::npos) << err;
  write_block_fp8_k_proj(dir.path("shape"), {{name, {2, 2}, {1, 1, 1, 1}, DType::F32}});
  err = error_of([&] { load_model(dir.path("shape")); });
  EXPECT_NE(err.find(name), std::string::npos) << err;
  EXPECT_NE(err.find("[1, 2] (32 x 48 blocks)"), std::string::npos) << err;
  write_block_fp8_k_proj(dir.path("negative"), {{name, {1, 2}, {0.01f, -1.f}, DType::F32}});
  err = error_of([&] { load_model(dir.path("negative")); });
  EXPECT_NE(err.find("not a finite non-negative scale"), std::string::npos) << err;
}

TEST(Fp8Checkpoint, ExpertInFp8WithoutAConfigIsNamed) {
  TempDir dir("fp8-expert-noconfig");
  write_tiny_hf_model(
      dir.path("m"), tiny_moe_spec("qwen3_moe"),
      [](std::vector<SafetensorsTensor>& st) {
        for (auto& t : st) {
          if (t.name == "model.layers.1.mlp.experts.3.up_proj.weight") t.dtype = DType::F8_E4M3;
        }
      },
      nlohmann::json::object());
  const std::string err = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(err.find("'model.layers.1.mlp.experts.3.up_proj.weight' is F8_E4M3"), std::string::npos)
      << err;
  EXPECT_NE(err.find("no FP8 quantization_config"), std::string::npos) << err;
}

TEST(Fp8Checkpoint, UnsupportedConfigsAreNamed) {
  TempDir dir("fp8-config");
  const std::string m = dir.path("m");
  write_tiny_fp8_hf_model(m, TinyModelSpec{}, Fp8Format::kFp8Tensor);
  edit_config(m, [](nlohmann::json& j) { j["quantization_config"]["quant_method"] = "awq"; });
  std::string err = error_of([&] { load_model(m); });
  EXPECT_NE(err.find("quant_method 'awq' is not supported"), std::string::npos) << err;
  for (const nlohmann::json& bad : {nlohmann::json::array({128}), nlohmann::json::array({0, 128}),
                                    nlohmann::json("big"), nlohmann::json::array({128, "x"})}) {
    edit_config(m, [&bad](nlohmann::json& j) {
      j["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", bad}};
    });
    err = error_of([&] { load_model(m); });
    EXPECT_NE(err.find("quantization_config.weight_block_size is " + bad.dump()), std::string::npos)
        << err;
    EXPECT_NE(err.find("two positive integers"), std::string::npos) << err;
  }
  edit_config(m, [](nlohmann::json& j) {
    j["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e5m2"}};
  });
  err = error_of([&] { load_model(m); });
  EXPECT_NE(err.find("quantization_config.fmt is \"e5m2\""), std::string::npos) << err;
  const auto weights = [](const std::string& strategy) {
    nlohmann::json w = {{"num_bits", 8}, {"type", "float"}, {"strategy", strategy}};
    if (strategy == "block") w["block_structure"] = {128, 128};
    return nlohmann::json{{"weights", w}};
  };
  edit_config(m, [&weights](nlohmann::json& j) {
    j["quantization_config"] = {
        {"quant_method", "compressed-tensors"},
        {"config_groups", {{"group_0", weights("block")}, {"group_1", weights("channel")}}}};
  });
  err = error_of([&] { load_model(m); });
  EXPECT_NE(err.find("mixes block scales with tensor or channel scales"), std::string::npos) << err;
  edit_config(m, [](nlohmann::json& j) {
    j["quantization_config"]["config_groups"] = {
        {"group_0", {{"weights", {{"num_bits", 8}, {"type", "float"}, {"strategy", "block"}}}}}};
  });
  err = error_of([&] { load_model(m); });
  EXPECT_NE(err.find("group_0.weights has the block strategy but no block_structure"),
            std::string::npos)
      << err;
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
