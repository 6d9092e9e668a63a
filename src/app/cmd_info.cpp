// `shardlm info`: architecture, sizes, tensor types, vocabulary, context and weight memory.
#include <fmt/format.h>

#include <iostream>

#include "app/commands.h"
#include "app/model_session.h"

namespace shardlm::app {

namespace {

void run_info(const std::string& flag) {
  const auto m = open_model(flag);
  const ModelConfig& c = m->config;
  std::string types;
  for (const auto& [name, n] : m->tensor_type_counts())
    types += fmt::format("{}{} x{}", types.empty() ? "" : ", ", name, n);
  std::cout << fmt::format("model:          {}\n", m->path)
            << fmt::format("format:         {}\n", m->format)
            << fmt::format("name:           {}\n", c.name)
            << fmt::format("architecture:   {}\n", c.arch)
            << fmt::format("layers:         {}\n", c.n_layers)
            << fmt::format("embedding:      {}\n", c.d_model)
            << fmt::format("heads:          {} (kv {}, head size {})\n", c.n_heads, c.n_kv_heads,
                           c.head_dim)
            << fmt::format("feed-forward:   {}\n", c.ffn_dim)
            << (c.is_moe() ? fmt::format("experts:        {} ({} per token{}), each {} wide{}\n",
                                         c.n_experts, c.n_experts_used,
                                         c.norm_topk_prob ? ", renormalised" : "", c.moe_ffn_dim,
                                         c.shared_ffn_dim ? fmt::format(", shared expert {} wide",
                                                                        c.shared_ffn_dim)
                                                          : "")
                           : "")
            << (c.is_mla() ? fmt::format("latent attn:    kv_lora {} + rope key {} cached per "
                                         "token per layer (q_lora {}, nope {}, v {})\n",
                                         c.kv_lora_rank, c.qk_rope_head_dim, c.q_lora_rank,
                                         c.qk_nope_head_dim, c.v_head_dim)
                           : "")
            << fmt::format("vocabulary:     {} ({})\n", c.vocab_size,
                           m->tokenizer.kind == TokenizerKind::kByteLevelBpe ? "byte-level BPE"
                                                                             : "SentencePiece BPE")
            << fmt::format("context length: {}\n", c.context_length)
            << fmt::format("rope:           theta {} {}{}\n", c.rope_theta,
                           c.rope_style == RopeStyle::kNeox ? "neox" : "normal",
                           c.rope_freq_factors.empty() ? ""
                           : c.is_mla()                ? ", YaRN scaling"  // MLA models: YaRN only
                                                       : ", llama3 scaling")
            << fmt::format("tied embedding: {}\n", c.tied_embeddings ? "yes" : "no")
            << fmt::format("tensor types:   {}\n", types)
            << fmt::format("weight memory:  {:.1f} MiB\n", m->weight_bytes() / 1048576.0)
            << fmt::format("chat template:  {}\n",
                           m->chat_template ? "yes" : "no (ChatML default)");
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto model = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("info", "describe a model");
  cmd->add_option("-m,--model", *model, "GGUF file or Hugging Face model directory");
  cmd->callback([model] { run_info(*model); });
}

}  // namespace shardlm::app
