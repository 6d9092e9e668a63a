// model_shape: the sizes and layer kinds a backend is built for.
#include "model/model_shape.h"

#include <algorithm>

namespace shardlm {

ModelShape model_shape(const ModelConfig& c) {
  ModelShape s;
  s.name = c.name.empty() ? c.arch : c.name;
  s.d_model = c.d_model;
  s.ffn_dim = c.ffn_dim;
  s.q_dim = c.q_dim();
  s.max_matmul_k = std::max({c.d_model, c.ffn_dim, c.q_dim(), c.moe_ffn_dim, c.shared_ffn_dim,
                             c.attn_out_dim(), c.q_lora_rank, c.kv_lora_rank, c.qk_nope_head_dim});
  s.latent_attention = c.is_mla();
  s.attention_dim = c.is_mla() ? c.kv_dim() : c.head_dim;  // MLA attends over the latent rows
  s.n_experts = c.n_experts;
  s.n_experts_used = c.n_experts_used;
  s.moe_ffn = c.moe_ffn_dim;
  s.moe_shared_ffn = c.shared_ffn_dim;
  return s;
}

}  // namespace shardlm
