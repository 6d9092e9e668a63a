// Mixture-of-experts models end to end on the CPU: the tiny qwen3_moe, qwen2_moe and mixtral
// checkpoints the tests write (Hugging Face per-expert tensors, GGUF stacked and per-expert)
// against logits from transformers (scripts/gen_logit_refs.py --tiny-moe), chunking invariance,
// the config fields, the presets, and one clear error for a missing or misshapen expert tensor or
// a bad expert count.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/cpu/quant.h"
#include "backend/make_backend.h"
#include "logit_ref.h"
#include "model/hf_config.h"
#include "model/model_presets.h"
#include "safetensors_writer.h"
#include "test_support.h"
#include "tiny_model.h"
#include "model/model_shape.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

const std::vector<int32_t> kIds = {256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100};

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

// Rewrites a tiny HF directory's model.safetensors with `edit` applied to its tensor list.
void edit_tensors(const std::string& dir,
                  const std::function<void(std::vector<SafetensorsTensor>&)>& edit) {
  std::vector<SafetensorsTensor> tensors;
  {
    SafetensorsFile file(dir + "/model.safetensors");
    for (const auto& t : file.tensors()) {
      std::vector<float> v(static_cast<size_t>(t.numel()));
      cpu::dequantize_row(t.dtype, t.data, v.data(), t.numel());
      std::vector<int64_t> shape(t.ne.begin(), t.ne.begin() + t.n_dims);
      std::reverse(shape.begin(), shape.end());
      tensors.push_back({t.name, shape, v});
    }
  }
  edit(tensors);
  write_safetensors(dir + "/model.safetensors", tensors, DType::BF16);
}

void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto cfg = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  edit(cfg);
  std::ofstream(dir + "/config.json") << cfg.dump();
}

TEST(MoeModels, ConfigAndLayersFromConfigJson) {
  for (const auto& [name, spec] : reference_tiny_moe_models()) {
    TempDir dir("moe-cfg-" + name);
    write_tiny_hf_model(dir.path("m"), spec);
    const auto m = load_model(dir.path("m"));
    const ModelConfig& c = m->config;
    EXPECT_EQ(c.arch, name);
    EXPECT_EQ(c.n_experts, spec.n_experts);
    EXPECT_EQ(c.n_experts_used, spec.top_k);
    EXPECT_EQ(c.moe_ffn_dim, spec.expert_ffn());
    EXPECT_EQ(c.norm_topk_prob, spec.norm_topk);
    EXPECT_EQ(c.shared_ffn_dim, spec.shared_ffn);
    EXPECT_EQ(c.qk_norm, name == "qwen3_moe");
    EXPECT_EQ(c.qkv_bias, name == "qwen2_moe");
    for (int l = 0; l < spec.n_layers; ++l) {
      const LayerWeights& L = m->weights.layers[static_cast<size_t>(l)];
      EXPECT_EQ(L.moe.empty(), !spec.is_moe_layer(l)) << name << " layer " << l;
      if (L.moe.empty()) continue;
      EXPECT_EQ(L.moe.n_experts(), spec.n_experts);
      EXPECT_EQ(L.moe.has_shared(), spec.shared_ffn > 0);
    }
    EXPECT_NE(c.summary().find("experts=" + std::to_string(spec.n_experts)), std::string::npos);
  }
}

// fp32 compute on both sides over the same BF16 weights: differences are summation order only
// (routing decisions are clear-cut in these models, so no expert choice flips).
TEST(MoeModels, TinyModelsMatchTransformers) {
  for (const auto& [name, spec] : reference_tiny_moe_models()) {
    const auto ref =
        read_logit_ref(std::string(SHARDLM_TEST_DATA) + "/logits/tiny_" + name + ".json");
    TempDir dir("moe-parity-" + name);
    write_tiny_hf_model(dir.path("m"), spec);
    auto s = make_session(dir.path("m"), 2, 8);  // batch 8: chunked prefill
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
    EXPECT_LT(max_err, 2e-3 * std::max(1.0, max_ref)) << name << " max |ref| " << max_ref;
  }
}

// GGUF files as llama.cpp writes them (stacked ffn_*_exps; mixtral as "llama" with an expert
// count and permuted Q/K) and with one tensor per expert load the same model as the HF directory.
TEST(MoeModels, GgufStackedAndPerExpertMatchHf) {
  for (const auto& [name, base] : reference_tiny_moe_models()) {
    TinyModelSpec spec = base;
    spec.dense_layers.clear();  // llama.cpp's MoE files have experts in every layer
    TempDir dir("moe-gguf-" + name);
    write_tiny_hf_model(dir.path("hf"), spec);
    write_tiny_gguf_model(dir.path("stacked.gguf"), spec, DType::F32);
    write_tiny_gguf_model(dir.path("per_expert.gguf"), spec, DType::F32, true);
    auto hf = make_session(dir.path("hf"));
    auto stacked = make_session(dir.path("stacked.gguf"));
    auto per_expert = make_session(dir.path("per_expert.gguf"));
    EXPECT_EQ(stacked.model->config.arch, name);
    const auto a = hf.llm->prompt_logits(kIds);
    const auto b = stacked.llm->prompt_logits(kIds);
    EXPECT_EQ(b, per_expert.llm->prompt_logits(kIds)) << name;
    EXPECT_LT(max_abs_diff(a, b), 0.1) << name;  // BF16 (HF) against F32 (GGUF) weights
  }
}

// Prefill in chunks of 3 or all at once, alone or beside another sequence: every logit is
// bit-identical, as the attention and the expert routing are row-by-row the same computation.
TEST(MoeModels, ChunkingDoesNotChangeLogits) {
  for (const auto& [name, spec] : reference_tiny_moe_models()) {
    TempDir dir("moe-chunk-" + name);
    write_tiny_hf_model(dir.path("m"), spec);
    auto whole = make_session(dir.path("m"), 2, 64);
    auto chunked = make_session(dir.path("m"), 2, 3);
    EXPECT_EQ(whole.llm->prompt_logits(kIds), chunked.llm->prompt_logits(kIds)) << name;
  }
}

TEST(MoeModels, MissingExpertTensorIsNamed) {
  TempDir dir("moe-missing");
  const auto spec = reference_tiny_moe_models()[0].second;
  write_tiny_hf_model(dir.path("m"), spec);
  edit_tensors(dir.path("m"), [](std::vector<SafetensorsTensor>& t) {
    std::erase_if(
        t, [](const auto& x) { return x.name == "model.layers.2.mlp.experts.5.up_proj.weight"; });
  });
  const std::string e = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(e.find("'blk.2.ffn_up.5.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("expert 5 of 8 in layer 2"), std::string::npos) << e;
}

TEST(MoeModels, MissingRouterIsNamed) {
  TempDir dir("moe-router");
  const auto spec = reference_tiny_moe_models()[1].second;  // mixtral
  write_tiny_hf_model(dir.path("m"), spec);
  edit_tensors(dir.path("m"), [](std::vector<SafetensorsTensor>& t) {
    std::erase_if(
        t, [](const auto& x) { return x.name == "model.layers.1.block_sparse_moe.gate.weight"; });
  });
  const std::string e = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(e.find("'blk.1.ffn_gate_inp.weight'"), std::string::npos) << e;
}

TEST(MoeModels, MisshapenExpertTensorIsNamed) {
  TempDir dir("moe-shape");
  const auto spec = reference_tiny_moe_models()[0].second;
  write_tiny_hf_model(dir.path("m"), spec);
  edit_config(dir.path("m"), [](nlohmann::json& c) { c["moe_intermediate_size"] = 64; });
  std::string e = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(e.find("model.layers.0.mlp.experts.0.gate_proj.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("do not match"), std::string::npos) << e;
  // A stacked GGUF tensor whose experts are narrower than the config says.
  TinyModelSpec gguf = spec;
  gguf.dense_layers.clear();
  write_tiny_gguf_model(dir.path("m.gguf"), gguf, DType::F32);
  e = error_of([&] {
    auto m = load_model(dir.path("m.gguf"));
    ModelConfig c = m->config;
    c.moe_ffn_dim = 64;
    std::deque<std::vector<float>> owned;
    bind_weights(
        c, [&](const std::string& n) { return m->gguf->find_tensor(n); }, owned, "m.gguf");
  });
  EXPECT_NE(e.find("'blk.0.ffn_gate_exps.weight'"), std::string::npos) << e;
  EXPECT_NE(e.find("[64, 64, 8] (8 experts of [64, 64]"), std::string::npos) << e;
}

TEST(MoeModels, BadExpertCountsAreNamed) {
  TempDir dir("moe-count");
  const auto spec = reference_tiny_moe_models()[0].second;
  write_tiny_hf_model(dir.path("m"), spec);
  edit_config(dir.path("m"), [](nlohmann::json& c) { c["num_experts_per_tok"] = 9; });
  std::string e = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(e.find("9 experts per token"), std::string::npos) << e;
  edit_config(dir.path("m"), [](nlohmann::json& c) { c.erase("num_experts_per_tok"); });
  e = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(e.find("'num_experts_per_tok'"), std::string::npos) << e;
}

TEST(MoeModels, SigmoidRoutingIsRefused) {
  TempDir dir("moe-gating");
  TinyModelSpec spec = tiny_moe_spec("qwen3_moe");
  spec.gguf_gating_func = 2;
  write_tiny_gguf_model(dir.path("m.gguf"), spec, DType::F32);
  const std::string e = error_of([&] { load_model(dir.path("m.gguf")); });
  EXPECT_NE(e.find("'qwen3moe.expert_gating_func' = 2 asks for sigmoid routing"), std::string::npos)
      << e;
  spec.gguf_gating_func = 1;  // softmax, said explicitly
  write_tiny_gguf_model(dir.path("m.gguf"), spec, DType::F32);
  EXPECT_EQ(error_of([&] { load_model(dir.path("m.gguf")); }), "");
}

// transformers' rule: layer i is sparse when experts exist, i is not in mlp_only_layers and
// (i + 1) is a multiple of decoder_sparse_step.
TEST(MoeModels, SparseStepAndMlpOnlyLayersPickTheDenseLayers) {
  nlohmann::json j = *model_preset("qwen3-30b-a3b");
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  const ModelConfig c = hf_config_from_json(j, "config");
  std::vector<int> sparse;
  for (int l = 0; l < 8; ++l) {
    if (c.is_moe_layer(l)) sparse.push_back(l);
  }
  EXPECT_EQ(sparse, (std::vector<int>{1, 5, 7}));
  j["mlp_only_layers"] = "3";
  EXPECT_NE(error_of([&] { hf_config_from_json(j, "config"); }).find("'mlp_only_layers'"),
            std::string::npos);
  j["mlp_only_layers"] = nlohmann::json::array();
  j["num_experts"] = 0;  // no experts: every layer dense, as in transformers
  EXPECT_FALSE(hf_config_from_json(j, "config").is_moe_layer(1));
}

TEST(MoeModels, PresetsDescribeTheModels) {
  const ModelConfig q = hf_config_from_json(*model_preset("qwen3-30b-a3b"), "preset");
  q.validate("preset");
  EXPECT_EQ(q.arch, "qwen3_moe");
  EXPECT_EQ(q.n_experts, 128);
  EXPECT_EQ(q.n_experts_used, 8);
  EXPECT_EQ(q.moe_ffn_dim, 768);
  EXPECT_TRUE(q.norm_topk_prob);
  EXPECT_TRUE(q.is_moe_layer(0) && q.is_moe_layer(47));
  const ModelConfig m = hf_config_from_json(*model_preset("mixtral-8x7b"), "preset");
  m.validate("preset");
  EXPECT_EQ(m.arch, "mixtral");
  EXPECT_EQ(m.n_experts, 8);
  EXPECT_EQ(m.n_experts_used, 2);
  EXPECT_EQ(m.moe_ffn_dim, 14336);
  EXPECT_TRUE(m.norm_topk_prob);
  // Parameters: ~30.5B and ~46.7B, as the model cards say.
  auto params = [](const ModelConfig& c) {
    const double d = c.d_model, attn = d * (c.q_dim() + 2.0 * c.kv_dim()) + c.q_dim() * d;
    const double experts = 3.0 * d * c.moe_ffn_dim * c.n_experts + d * c.n_experts;
    return c.n_layers * (attn + experts) + 2.0 * d * c.vocab_size;
  };
  EXPECT_NEAR(params(q) / 1e9, 30.5, 0.3);
  EXPECT_NEAR(params(m) / 1e9, 46.7, 0.3);
}

// The CUDA backend has MoE and MLA ops (issue 17): make_backend no longer refuses such a model
// (without a GPU it fails for the missing GPU, not for the model).
TEST(MoeModels, CudaTakesMixtureOfExpertsAndLatentAttention) {
  for (const char* preset : {"qwen3-30b-a3b", "deepseek-v2-lite"}) {
    const ModelConfig c = hf_config_from_json(*model_preset(preset), "preset");
    BackendSpec spec;
    spec.device = Device::kCuda;
    spec.max_batch_tokens = 16;
    spec.max_context = 64;
    const std::string e = error_of([&] { make_backend(spec, model_shape(c)); });
    EXPECT_EQ(e.find("CPU only"), std::string::npos) << preset << ": " << e;
  }
}

}  // namespace
}  // namespace shardlm
