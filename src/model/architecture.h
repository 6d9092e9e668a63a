// The registry of supported architectures. Each architecture lives in its own file under arch/
// and describes how it differs from the shared llama-style decoder block; the registry is the only
// place that lists them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace shardlm {

// How a mixture-of-experts architecture names and reads its expert fields.
struct MoeFields {
  std::string experts_key;        // config.json: "num_experts" | "num_local_experts"
  std::string ffn_key;            // config.json: "moe_intermediate_size" | "intermediate_size"
  bool always_norm_topk = false;  // mixtral: always renormalised; else norm_topk_prob decides
  bool sparse_step = false;       // reads decoder_sparse_step and mlp_only_layers
  bool shared_expert = false;     // qwen2_moe: shared expert with a sigmoid gate
  bool gguf_norm_topk = false;    // GGUF files without "<arch>.expert_weights_norm"
  std::string topk_key = "num_experts_per_tok";  // ernie4_5_moe: "moe_k"
  // deepseek, ernie: that many shared experts of the experts' width, as one ungated expert.
  std::string shared_count_key = "";
  bool deepseek_routing = false;  // topk_method, scoring_func, n_group, topk_group,
                                  // routed_scaling_factor, first_k_dense_replace
  bool ernie_layers = false;      // moe_layer_start_index, moe_layer_end_index, moe_layer_interval
  bool score_bias = false;        // always an e_score_correction_bias (ernie4_5_moe)
};

struct Architecture {
  std::string name;                         // the registered name (config.arch)
  std::vector<std::string> hf_model_types;  // config.json model_type values
  bool qkv_bias = false;                    // q/k/v projections carry biases
  bool qk_norm = false;                     // per-head RMSNorm on q and k before rope
  // GGUF general.architecture when it is not `name` (qwen3_moe: "qwen3moe"); mixtral's GGUF files
  // say "llama" and carry "llama.expert_count".
  std::string gguf_arch = "";
  std::optional<MoeFields> moe = std::nullopt;  // a dense architecture
  RopeStyle gguf_rope_style = RopeStyle::kNormal;
  // Multi-head latent attention (deepseek_v2/v3): q_lora_rank, kv_lora_rank, qk_nope_head_dim,
  // qk_rope_head_dim, v_head_dim, YaRN rope scaling, interleaved rope unless rope_interleave is
  // false.
  bool mla = false;
  RopeStyle hf_rope_style = RopeStyle::kNeox;  // ernie4_5_moe rotates interleaved pairs

  const std::string& gguf_name() const { return gguf_arch.empty() ? name : gguf_arch; }
};

// Looks up by GGUF architecture name (and whether the file has experts, which tells llama from
// mixtral); throws Error listing the supported names.
const Architecture& find_architecture(const std::string& gguf_name, const std::string& source,
                                      bool has_experts = false);
// Looks up by Hugging Face model_type; throws Error listing the supported types.
const Architecture& find_hf_architecture(const std::string& model_type, const std::string& source);
const std::vector<Architecture>& all_architectures();

// One function per architecture file.
Architecture llama_architecture();
Architecture mistral_architecture();
Architecture qwen2_architecture();
Architecture qwen3_architecture();
Architecture qwen3_moe_architecture();
Architecture qwen2_moe_architecture();
Architecture mixtral_architecture();
Architecture deepseek_v2_architecture();
Architecture deepseek_v3_architecture();
Architecture ernie4_5_moe_architecture();

}  // namespace shardlm
