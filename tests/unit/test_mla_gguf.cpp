// DeepSeek and ERNIE-4.5 MoE GGUF files as llama.cpp writes them load the same model as the
// Hugging Face directory. "deepseek2": attn_q_a/attn_q_b or attn_q, attn_kv_a_mqa, attn_kv_b,
// stacked ffn_*_exps, ffn_*_shexp, exp_probs_b, the leading dense layers, sigmoid gating, expert
// groups, YaRN from rope.scaling.*; "ernie4_5-moe": the leading dense layers, ungated shared
// experts, exp_probs_b.
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

const std::vector<int32_t> kIds = {256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100};

TEST(MlaGguf, Deepseek2FilesMatchTheHfDirectory) {
  for (const auto& [name, spec] : reference_tiny_mla_models()) {
    TempDir dir("mla-gguf-" + name);
    write_tiny_hf_model(dir.path("hf"), spec);
    write_tiny_gguf_model(dir.path("stacked.gguf"), spec, DType::F32);
    write_tiny_gguf_model(dir.path("per_expert.gguf"), spec, DType::F32, true);
    auto hf = make_session(dir.path("hf"));
    auto stacked = make_session(dir.path("stacked.gguf"));
    auto per_expert = make_session(dir.path("per_expert.gguf"));
    const ModelConfig& c = stacked.model->config;
    const ModelConfig& h = hf.model->config;
    EXPECT_EQ(c.arch, name);
    EXPECT_EQ(c.kv_dim(), h.kv_dim());
    EXPECT_EQ(c.q_lora_rank, h.q_lora_rank);
    EXPECT_EQ(c.dense_layers, h.dense_layers);
    EXPECT_EQ(c.moe_layer_step, h.moe_layer_step);
    EXPECT_EQ(c.shared_ffn_dim, h.shared_ffn_dim);
    EXPECT_EQ(c.moe_score_bias, h.moe_score_bias);
    EXPECT_EQ(c.norm_topk_prob, h.norm_topk_prob);
    EXPECT_EQ(c.moe_routing.n_groups, h.moe_routing.n_groups);
    EXPECT_FLOAT_EQ(c.attn_scale_mul, h.attn_scale_mul);
    EXPECT_EQ(c.rope_freq_factors, h.rope_freq_factors);
    const auto a = hf.llm->prompt_logits(kIds);
    const auto b = stacked.llm->prompt_logits(kIds);
    EXPECT_EQ(b, per_expert.llm->prompt_logits(kIds)) << name;
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
    EXPECT_LT(m, 0.1) << name;  // BF16 (HF) against F32 (GGUF) weights
  }
}

}  // namespace
}  // namespace shardlm
