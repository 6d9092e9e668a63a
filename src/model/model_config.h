// Hyper-parameters of a decoder-only transformer, independent of the file format they came from.
#pragma once

#include <string>
#include <vector>

#include "backend/moe.h"
#include "backend/rope_params.h"

namespace shardlm {

struct ModelConfig {
  std::string arch;  // registered architecture name ("llama", "qwen2", ...)
  std::string name;  // human-readable model name, if known
  int n_layers = 0;
  int d_model = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int ffn_dim = 0;
  int vocab_size = 0;
  int context_length = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
  RopeStyle rope_style = RopeStyle::kNeox;
  // Per-frequency divisors (head_dim / 2 entries) for llama3-style rope scaling; empty = none.
  std::vector<float> rope_freq_factors;
  bool qkv_bias = false;  // qwen2
  bool qk_norm = false;   // qwen3: RMSNorm over each head of q and k before rope
  bool tied_embeddings = false;
  int sliding_window = 0;  // 0 = full attention (mistral v0.1 uses 4096)
  // Mixture of experts (n_experts 0: a dense model). An MoE layer routes each token to
  // n_experts_used of n_experts SwiGLU experts of width moe_ffn_dim; the other layers
  // (dense_layers, and those whose index + 1 is not a multiple of moe_layer_step) keep the dense
  // FFN of ffn_dim.
  int n_experts = 0;
  int n_experts_used = 0;
  int moe_ffn_dim = 0;
  bool norm_topk_prob = false;    // renormalise the chosen experts' probabilities to sum 1
  int shared_ffn_dim = 0;         // qwen2_moe: a shared expert beside the routed ones (0 = none)
  int moe_layer_step = 1;         // qwen2_moe/qwen3_moe decoder_sparse_step
  std::vector<int> dense_layers;  // qwen2_moe/qwen3_moe mlp_only_layers, deepseek's first k layers
  bool shared_expert_gated = false;  // qwen2_moe: sigmoid(x . shared_expert_gate) scales it
  MoeRouting moe_routing;            // softmax top-k unless the architecture says otherwise
  bool moe_score_bias = false;       // deepseek_v3, ernie4_5_moe: e_score_correction_bias
  // Multi-head latent attention (deepseek_v2/v3; kv_lora_rank 0: ordinary attention). Queries are
  // n_heads x (qk_nope_head_dim + qk_rope_head_dim) (head_dim holds the sum), through a
  // q_lora_rank bottleneck when it is not 0. Keys and values come from one kv_lora_rank latent
  // per token plus one shared qk_rope_head_dim rope key: all that the KV cache holds.
  int q_lora_rank = 0;
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  // YaRN rope scaling (rope_freq_factors hold its per-frequency divisors): cos/sin are scaled by
  // rope_attn_factor, and deepseek's softmax scale by attn_scale_mul (mscale_all_dim squared).
  float rope_attn_factor = 1.f;
  float attn_scale_mul = 1.f;

  int q_dim() const { return n_heads * head_dim; }
  // K and V projection widths, and the elements per token per layer of each KV cache pool; under
  // MLA the cached compressed row (kv_lora_rank latent + shared rope key).
  int kv_dim() const { return is_mla() ? kv_lora_rank + qk_rope_head_dim : n_kv_heads * head_dim; }
  bool is_moe() const { return n_experts > 0; }
  bool is_mla() const { return kv_lora_rank > 0; }
  // The rotated part of a head: qk_rope_head_dim under MLA, else the whole head.
  int rope_dim() const { return is_mla() ? qk_rope_head_dim : head_dim; }
  // Whether the KV cache needs a value pool (KvCacheShape::values): MLA reads its values from the
  // cached latent.
  bool kv_cache_values() const { return !is_mla(); }
  // The attention output width (the O projection's input).
  int attn_out_dim() const { return is_mla() ? n_heads * v_head_dim : q_dim(); }
  // Whether layer il runs the mixture of experts (else the dense FFN).
  bool is_moe_layer(int il) const;
  // Throws Error naming `source` if the values are inconsistent (zero sizes, heads not dividing).
  void validate(const std::string& source) const;
  void validate_moe(const std::string& source) const;
  void validate_mla(const std::string& source) const;
  std::string summary() const;
};

// Llama 3.1 rope scaling: per-frequency divisors computed from the rope_scaling block of
// config.json (factor, low/high frequency factors, original context length).
std::vector<float> llama3_rope_freq_factors(int head_dim, float theta, float factor,
                                            float low_freq_factor, float high_freq_factor,
                                            int original_context);

}  // namespace shardlm
