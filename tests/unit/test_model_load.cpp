// Model loading from Hugging Face directories and GGUF files: configs, tensor binding, and
// clear errors for unknown architectures, missing tensors and shapes that do not match.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "model/model.h"
#include "safetensors_writer.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

TEST(ModelLoad, HfDirectoryLoadsEveryArchitecture) {
  for (const auto& [name, spec] : reference_tiny_models()) {
    TempDir dir("hf-" + name);
    write_tiny_hf_model(dir.path("m"), spec);
    const auto m = load_model(dir.path("m"));
    EXPECT_EQ(m->config.arch, spec.arch);
    EXPECT_EQ(m->config.head_dim, spec.head_dim);
    EXPECT_EQ(m->config.tied_embeddings, spec.tied);
    EXPECT_EQ(m->config.qkv_bias, spec.arch == "qwen2");
    EXPECT_EQ(m->config.qk_norm, spec.arch == "qwen3");
    EXPECT_EQ(m->config.rope_freq_factors.empty(), !spec.llama3_scaling);
    EXPECT_EQ(m->weights.layers.size(), static_cast<size_t>(spec.n_layers));
  }
}

TEST(ModelLoad, GgufMatchesHfLogits) {
  // Same weights through both formats (GGUF llama with permuted Q/K and interleaved rope, HF with
  // neox rope) must give the same logits.
  for (const auto& [name, spec] : reference_tiny_models()) {
    TempDir dir("fmt-" + name);
    write_tiny_hf_model(dir.path("hf"), spec);
    write_tiny_gguf_model(dir.path("m.gguf"), spec, DType::F32);
    auto hf = make_session(dir.path("hf"));
    auto gg = make_session(dir.path("m.gguf"));
    const std::vector<int32_t> ids = {256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100};
    const auto a = hf.llm->prompt_logits(ids);
    const auto b = gg.llm->prompt_logits(ids);
    ASSERT_EQ(a.size(), b.size());
    double max_diff = 0;
    for (size_t i = 0; i < a.size(); ++i)
      max_diff = std::max(max_diff, std::abs(double(a[i]) - b[i]));
    // HF weights are BF16, the GGUF copy F32: differences come from BF16 rounding only.
    EXPECT_LT(max_diff, 0.1) << name;
  }
}

TEST(ModelLoad, UnknownArchitectureIsNamed) {
  TempDir dir("arch");
  TinyModelSpec spec;
  write_tiny_hf_model(dir.path("m"), spec);
  auto cfg = nlohmann::json::parse(std::ifstream(dir.path("m/config.json")));
  cfg["model_type"] = "gpt_bigcode";
  std::ofstream(dir.path("m/config.json")) << cfg.dump();
  const std::string e = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(e.find("gpt_bigcode"), std::string::npos) << e;
  EXPECT_NE(e.find("supported"), std::string::npos) << e;
}

TEST(ModelLoad, ShapeMismatchNamesTheTensor) {
  TempDir dir("shape");
  TinyModelSpec spec;
  write_tiny_hf_model(dir.path("m"), spec);
  auto cfg = nlohmann::json::parse(std::ifstream(dir.path("m/config.json")));
  cfg["intermediate_size"] = 128;
  std::ofstream(dir.path("m/config.json")) << cfg.dump();
  const std::string e = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(e.find("mlp.gate_proj.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("do not match"), std::string::npos) << e;
}

TEST(ModelLoad, MissingTensorAndMissingFilesAreNamed) {
  TempDir dir("missing");
  TinyModelSpec spec;
  spec.n_layers = 3;
  write_tiny_hf_model(dir.path("m"), spec);
  auto cfg = nlohmann::json::parse(std::ifstream(dir.path("m/config.json")));
  cfg["num_hidden_layers"] = 4;
  std::ofstream(dir.path("m/config.json")) << cfg.dump();
  EXPECT_NE(error_of([&] { load_model(dir.path("m")); }).find("blk.3."), std::string::npos);
  EXPECT_NE(error_of([&] { load_model(dir.path("nope")); }).find("does not exist"),
            std::string::npos);
  std::ofstream(dir.path("junk.gguf")) << "not a model";
  EXPECT_NE(error_of([&] { load_model(dir.path("junk.gguf")); }).find("not a GGUF"),
            std::string::npos);
}

TEST(ModelLoad, ShardedSafetensorsWithIndex) {
  TempDir dir("sharded");
  TinyModelSpec spec;
  write_tiny_hf_model(dir.path("m"), spec);
  // Re-split the single file into two shards plus an index, as large HF models ship.
  SafetensorsFile whole(dir.path("m/model.safetensors"));
  std::vector<SafetensorsTensor> parts[2];
  nlohmann::json index = {{"metadata", nlohmann::json::object()},
                          {"weight_map", nlohmann::json::object()}};
  size_t k = 0;
  for (const auto& t : whole.tensors()) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    cpu::dequantize_row(t.dtype, t.data, v.data(), t.numel());
    std::vector<int64_t> shape(t.ne.begin(), t.ne.begin() + t.n_dims);
    std::reverse(shape.begin(), shape.end());
    const int part = static_cast<int>(k++ % 2);
    parts[part].push_back({t.name, shape, v});
    index["weight_map"][t.name] = "model-0000" + std::to_string(part + 1) + "-of-00002.safetensors";
  }
  write_safetensors(dir.path("m/model-00001-of-00002.safetensors"), parts[0], DType::BF16);
  write_safetensors(dir.path("m/model-00002-of-00002.safetensors"), parts[1], DType::BF16);
  std::ofstream(dir.path("m/model.safetensors.index.json")) << index.dump();
  const auto single = make_session(dir.path("m"));
  std::filesystem::remove(dir.path("m/model.safetensors"));
  const auto sharded = make_session(dir.path("m"));
  EXPECT_EQ(sharded.model->shards.size(), 2u);
  const std::vector<int32_t> ids = {256, 10, 20, 30};
  EXPECT_EQ(single.llm->prompt_logits(ids), sharded.llm->prompt_logits(ids));
}

}  // namespace
}  // namespace shardlm
