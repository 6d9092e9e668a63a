// DeepSeek-V2/V3 (multi-head latent attention, group-limited and sigmoid routing, YaRN, dense first
// layers, ungated shared experts) and ERNIE-4.5 MoE on the CPU: the tiny checkpoints the tests
// write against transformers' logits (scripts/gen_logit_refs.py --tiny-moe), the absorbed MLA op
// against the expanded form, the compressed KV row, the routing rules, and clear errors for bad
// checkpoints and configs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/mla.h"
#include "backend/cpu/moe.h"
#include "backend/cpu/quant.h"
#include "backend/make_backend.h"
#include "kv/kv_cache.h"
#include "logit_ref.h"
#include "model/hf_config.h"
#include "model/model_presets.h"
#include "model/model_shape.h"
#include "model/rope_config.h"
#include "parallel/tp_shard.h"
#include "safetensors_writer.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto cfg = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  edit(cfg);
  std::ofstream(dir + "/config.json") << cfg.dump();
}

TinyModelSpec reference_spec(const std::string& arch) {
  for (const auto& [name, spec] : reference_tiny_mla_models()) {
    if (name == arch) return spec;
  }
  throw std::invalid_argument(arch);
}

TEST(MlaModels, ConfigFromConfigJson) {
  TempDir dir("mla-cfg");
  write_tiny_hf_model(dir.path("v2"), reference_spec("deepseek_v2"));
  write_tiny_hf_model(dir.path("v3"), reference_spec("deepseek_v3"));
  write_tiny_hf_model(dir.path("ernie"), reference_spec("ernie4_5_moe"));
  const auto v2 = load_model(dir.path("v2"));
  const ModelConfig& c = v2->config;
  EXPECT_EQ(c.arch, "deepseek_v2");
  EXPECT_TRUE(c.is_mla());
  EXPECT_EQ(c.q_lora_rank, 0);
  EXPECT_EQ(c.head_dim, 24);      // nope 16 + rope 8
  EXPECT_EQ(c.kv_dim(), 32 + 8);  // the cached row: latent + rope key
  EXPECT_FALSE(c.kv_cache_values());
  EXPECT_EQ(c.rope_dim(), 8);
  EXPECT_EQ(c.rope_style, RopeStyle::kNormal);
  EXPECT_EQ(c.rope_freq_factors.size(), 4u);
  EXPECT_FLOAT_EQ(c.rope_freq_factors[2], 4.f);  // YaRN: the low frequencies interpolated
  EXPECT_EQ(c.shared_ffn_dim, 32);
  EXPECT_FALSE(c.shared_expert_gated);
  EXPECT_EQ(c.moe_routing.n_groups, 4);
  EXPECT_EQ(c.moe_routing.scoring, MoeScoring::kSoftmax);
  EXPECT_FLOAT_EQ(c.moe_routing.scale, 1.5f);
  EXPECT_FALSE(c.is_moe_layer(0));  // first_k_dense_replace 1
  EXPECT_TRUE(c.is_moe_layer(1));
  EXPECT_TRUE(v2->weights.layers[1].mla.k_b.size() == 4);
  const auto v3 = load_model(dir.path("v3"));
  EXPECT_EQ(v3->config.q_lora_rank, 24);
  EXPECT_EQ(v3->config.moe_routing.scoring, MoeScoring::kSigmoid);
  EXPECT_EQ(v3->config.moe_routing.group_score, MoeGroupScore::kTop2Sum);
  EXPECT_NE(v3->weights.layers[1].moe.score_bias, nullptr);
  EXPECT_NEAR(v3->config.rope_attn_factor, 1.02496f, 1e-4);
  const auto ernie = load_model(dir.path("ernie"));
  EXPECT_FALSE(ernie->config.is_mla());
  EXPECT_TRUE(ernie->config.norm_topk_prob);
  EXPECT_NE(ernie->weights.layers[2].moe.score_bias, nullptr);
  EXPECT_TRUE(ernie->weights.layers[0].moe.empty());
  EXPECT_NE(c.summary().find("kv_lora=32"), std::string::npos);
}

// fp32 compute on both sides over the same BF16 weights (MLA in the absorbed form here, expanded
// in transformers); batch 8 chunks the prefill, so later chunks attend over cached latent rows.
TEST(MlaModels, TinyModelsMatchTransformers) {
  for (const auto& [name, spec] : reference_tiny_mla_models()) {
    const auto ref =
        read_logit_ref(std::string(SHARDLM_TEST_DATA) + "/logits/tiny_" + name + ".json");
    TempDir dir("mla-parity-" + name);
    write_tiny_hf_model(dir.path("m"), spec);
    auto s = make_session(dir.path("m"), 2, 8);
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

// A token costs kv_lora_rank + qk_rope_head_dim cached values per layer: one pool, no values.
TEST(MlaModels, KvCacheHoldsOneLatentRowPerToken) {
  TempDir dir("mla-kv");
  write_tiny_hf_model(dir.path("m"), reference_spec("deepseek_v3"));
  const auto model = load_model(dir.path("m"));
  const ModelConfig& c = model->config;
  const KvCacheShape shape{c.n_layers, c.kv_dim(), 16, 8, sizeof(float), c.kv_cache_values()};
  EXPECT_EQ(shape.bytes(), size_t(3 * 8 * 16 * (32 + 8) * 4));
  CpuBackend backend(CpuBackendOptions::for_model(model_shape(c), 1, 16, 128));
  KvCache kv(shape, backend);
  EXPECT_EQ(kv.layer(0).k, kv.layer(0).v);
  // A dense equivalent (n_heads keys and values of nope + rope and v_head) would cache
  // 4 * (24 + 16) = 160 values per token per layer instead of 40.
  EXPECT_EQ(c.kv_dim() * 4, c.n_heads * (c.head_dim + c.v_head_dim));
}

TEST(MlaModels, ChunkingDoesNotChangeLogits) {
  const std::vector<int32_t> ids = {256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100};
  for (const auto& [name, spec] : reference_tiny_mla_models()) {
    TempDir dir("mla-chunks-" + name);
    write_tiny_hf_model(dir.path("m"), spec);
    auto whole = make_session(dir.path("m"), 2, 64);
    auto chunked = make_session(dir.path("m"), 2, 3);
    const auto a = whole.llm->prompt_logits(ids), b = chunked.llm->prompt_logits(ids);
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
    EXPECT_LT(m, 1e-4) << name;
  }
}

// The absorbed op (queries mapped into the latent space, attention over the cached rows) equals
// expanding every latent into per-head keys and values, in two chunks (the second over the
// first's cached rows).
TEST(MlaModels, AbsorbedAttentionEqualsExpanded) {
  for (const char* arch : {"deepseek_v2", "deepseek_v3"}) {
    TempDir dir(std::string("mla-op-") + arch);
    write_tiny_hf_model(dir.path("m"), reference_spec(arch));
    const auto model = load_model(dir.path("m"));
    const ModelConfig& c = model->config;
    const MlaWeights& w = model->weights.layers[1].mla;
    const int64_t n = 11, H = c.n_heads, qk = c.head_dim, R = c.kv_dim();
    const auto q = det_weights("q", n * H * qk, 1.f), ckv = det_weights("ckv", n * R, 1.f);
    const RopeParams rope = rope_params(c);
    const float scale = c.attn_scale_mul / std::sqrt(float(qk));
    std::vector<float> expected(static_cast<size_t>(n * H * c.v_head_dim));
    cpu::mla_attention_reference(w, q.data(), ckv.data(), n, rope, scale, expected.data());

    ThreadPool pool(2);
    cpu::MatmulWorkspace ws;
    ws.reserve(n, 64);
    cpu::AttentionScratch as;
    as.reserve(pool.size(), 64, n, R);
    cpu::MlaScratch s;
    std::vector<float> cache(static_cast<size_t>(4 * 4 * R)), out(expected.size());
    const std::vector<int32_t> table = {2, 0, 3, 1};  // blocks of 4 slots, out of order
    std::vector<int32_t> pos(n), slots(n);
    for (int32_t i = 0; i < n; ++i) {
      pos[i] = i;
      slots[i] = table[i / 4] * 4 + i % 4;
    }
    const AttentionParams p{c.n_heads, 1, static_cast<int>(R), 4, 0, scale};
    for (const auto [first, count] : {std::pair{0, 6}, std::pair{6, 5}}) {
      const AttentionSeq seq{0, count, first, table.data()};
      cpu::mla_attention(pool, ws, as, s, w, q.data() + first * H * qk, ckv.data() + first * R,
                         pos.data() + first, slots.data() + first, count, rope,
                         KvLayerView{cache.data(), cache.data()}, &seq, 1, p,
                         out.data() + first * H * c.v_head_dim);
    }
    double m = 0;
    for (size_t i = 0; i < out.size(); ++i) m = std::max(m, double(std::abs(out[i] - expected[i])));
    EXPECT_LT(m, 1e-4) << arch;
  }
}

// DeepSeek-V3's routing: sigmoid scores, the choice by score + bias within the best groups (a
// group's score: its best two), weights = the plain scores renormalised, times the scale.
TEST(MlaModels, SigmoidGroupLimitedRouting) {
  // 4 groups of 2 experts. Logits chosen so that expert 7 alone scores highest, but its group
  // (6, 7) has a weak partner; group (0, 1) and (2, 3) have the best pairs.
  const std::vector<float> logits = {1.0f, 0.9f, 0.8f, 0.8f, -2.f, -2.f, -3.f, 2.0f};
  MoeRouting r;
  r.scoring = MoeScoring::kSigmoid;
  r.n_groups = 4;
  r.topk_groups = 2;
  r.group_score = MoeGroupScore::kTop2Sum;
  r.scale = 2.f;
  const std::vector<float> bias(8, 0.f);
  int32_t ids[2];
  float weights[2], scratch[16];
  cpu::moe_route(logits.data(), 8, 2, true, r, bias.data(), ids, weights, scratch);
  EXPECT_EQ(ids[0], 0);  // group (6, 7) sums to sigmoid(-3) + sigmoid(2) = 0.93 < 1.40, 1.38
  EXPECT_EQ(ids[1], 1);
  auto sig = [](float x) { return 1.f / (1.f + std::exp(-x)); };
  EXPECT_NEAR(weights[0], 2.f * sig(1.0f) / (sig(1.0f) + sig(0.9f)), 1e-6);
  // A bias moves the choice but not the weights: expert 3 over expert 1.
  std::vector<float> biased(8, 0.f);
  biased[3] = 0.2f;
  cpu::moe_route(logits.data(), 8, 2, true, r, biased.data(), ids, weights, scratch);
  EXPECT_EQ(ids[0], 3);
  EXPECT_EQ(ids[1], 0);
  EXPECT_NEAR(weights[0], 2.f * sig(0.8f) / (sig(0.8f) + sig(1.0f)), 1e-6);
  // Without groups expert 7 wins.
  r.n_groups = r.topk_groups = 1;
  cpu::moe_route(logits.data(), 8, 2, false, r, nullptr, ids, weights, scratch);
  EXPECT_EQ(ids[0], 7);
  EXPECT_NEAR(weights[0], 2.f * sig(2.f), 1e-6);
}

TEST(MlaModels, MissingOrMisshapenMlaTensorIsNamed) {
  TempDir dir("mla-bad");
  write_tiny_hf_model(dir.path("m"), reference_spec("deepseek_v3"));
  edit_config(dir.path("m"), [](nlohmann::json& j) { j["kv_lora_rank"] = 16; });
  std::string e = error_of([&] { load_model(dir.path("m")); });
  EXPECT_NE(e.find("kv_a_proj_with_mqa.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("do not match config"), std::string::npos) << e;
  // A checkpoint without kv_b_proj: the tensor is named.
  write_tiny_hf_model(dir.path("n"), reference_spec("deepseek_v3"));
  std::vector<SafetensorsTensor> kept;
  {
    SafetensorsFile file(dir.path("n") + "/model.safetensors");
    for (const auto& t : file.tensors()) {
      if (t.name == "model.layers.1.self_attn.kv_b_proj.weight") continue;
      std::vector<float> v(static_cast<size_t>(t.numel()));
      cpu::dequantize_row(t.dtype, t.data, v.data(), t.numel());
      std::vector<int64_t> shape(t.ne.begin(), t.ne.begin() + t.n_dims);
      std::reverse(shape.begin(), shape.end());
      kept.push_back({t.name, shape, v});
    }
  }
  write_safetensors(dir.path("n") + "/model.safetensors", kept, DType::BF16);
  e = error_of([&] { load_model(dir.path("n")); });
  EXPECT_NE(e.find("missing tensor 'blk.1.attn_kv_b.weight'"), std::string::npos) << e;
}

TEST(MlaModels, BadRoutingAndScalingAreNamed) {
  TempDir dir("mla-cfg-bad");
  write_tiny_hf_model(dir.path("m"), reference_spec("deepseek_v3"));
  const auto j = nlohmann::json::parse(std::ifstream(dir.path("m") + "/config.json"));
  auto err = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json k = j;
    edit(k);
    return error_of([&] { hf_config_from_json(k, "config").validate("config"); });
  };
  EXPECT_NE(err([](auto& k) { k["topk_method"] = "random"; }).find("topk_method 'random'"),
            std::string::npos);
  EXPECT_NE(err([](auto& k) { k["scoring_func"] = "softmax"; }).find("sigmoid only"),
            std::string::npos);
  EXPECT_NE(err([](auto& k) { k["n_group"] = 3; }).find("n_group 3 must divide the 8 experts"),
            std::string::npos);
  EXPECT_NE(err([](auto& k) { k["rope_scaling"]["type"] = "longrope"; }).find("'longrope'"),
            std::string::npos);
  EXPECT_NE(err([](auto& k) { k["attention_bias"] = true; }).find("attention_bias"),
            std::string::npos);
  // YaRN is read for MLA models only.
  nlohmann::json llama = {{"model_type", "llama"},
                          {"hidden_size", 64},
                          {"num_hidden_layers", 1},
                          {"num_attention_heads", 4},
                          {"intermediate_size", 64},
                          {"vocab_size", 300},
                          {"rope_scaling", {{"type", "yarn"}, {"factor", 4.0}}}};
  EXPECT_NE(error_of([&] { hf_config_from_json(llama, "config"); }).find("yarn with multi-head"),
            std::string::npos);
}

TEST(MlaModels, PresetsDescribeTheModels) {
  const ModelConfig lite = hf_config_from_json(*model_preset("deepseek-v2-lite"), "preset");
  lite.validate("preset");
  EXPECT_EQ(lite.arch, "deepseek_v2");
  EXPECT_EQ(lite.q_lora_rank, 0);
  EXPECT_EQ(lite.kv_dim(), 576);  // 512 latent + 64 rope key cached per token per layer
  EXPECT_FALSE(lite.is_moe_layer(0));
  EXPECT_TRUE(lite.is_moe_layer(26));
  EXPECT_EQ(lite.shared_ffn_dim, 2 * 1408);
  const ModelConfig v3 = hf_config_from_json(*model_preset("deepseek-v3"), "preset");
  v3.validate("preset");
  EXPECT_EQ(v3.moe_routing.n_groups, 8);
  EXPECT_TRUE(v3.moe_score_bias);
  EXPECT_EQ(v3.dense_layers, (std::vector<int>{0, 1, 2}));
  const ModelConfig ernie = hf_config_from_json(*model_preset("ernie-4.5-21b-a3b"), "preset");
  ernie.validate("preset");
  EXPECT_EQ(ernie.arch, "ernie4_5_moe");
  EXPECT_EQ(ernie.shared_ffn_dim, 2 * 1536);
  EXPECT_FALSE(ernie.is_moe_layer(0));
  EXPECT_TRUE(ernie.is_moe_layer(27));
  // DeepSeek-V3's 671B parameters are refused by size rather than generated.
  const std::string e = error_of([] { load_model("deepseek-v3", "dummy"); });
  EXPECT_NE(e.find("GiB of BF16 but this machine has"), std::string::npos) << e;
  EXPECT_NE(e.find("671."), std::string::npos) << e;
}

// Tensor parallelism splits the query heads (and their W_kb / W_vb); the latent stays whole.
TEST(MlaModels, TensorParallelShardsTheHeads) {
  TempDir dir("mla-tp");
  write_tiny_hf_model(dir.path("m"), reference_spec("deepseek_v3"));
  const auto model = load_model(dir.path("m"));
  for (int r = 0; r < 2; ++r) {
    const auto shard = parallel::shard_model(*model, r, 2);
    EXPECT_EQ(shard->config.n_heads, 2);
    EXPECT_EQ(shard->config.kv_dim(), model->config.kv_dim());
    const LayerWeights& L = shard->weights.layers[1];
    EXPECT_EQ(L.mla.n_heads, 2);
    ASSERT_EQ(L.mla.k_b.size(), 2u);
    EXPECT_EQ(L.mla.k_b[0].data, model->weights.layers[1].mla.k_b[2 * r].data);
    EXPECT_EQ(L.wq_b.ne[1], model->weights.layers[1].wq_b.ne[1] / 2);
    EXPECT_EQ(L.wkv_a.data, model->weights.layers[1].wkv_a.data);
    EXPECT_EQ(L.wk.data, nullptr);
  }
}

}  // namespace
}  // namespace shardlm
