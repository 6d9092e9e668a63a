// The weights of one multi-head latent attention layer (deepseek_v2/v3) as the backend's
// mla_attention op reads them: the latent's norm and the per-head up-projections in their
// absorbed form (queries mapped into the latent space, the attention's latent output mapped to
// each head's values), plus the shapes.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace shardlm {

struct MlaWeights {
  int n_heads = 0;
  int nope = 0;     // qk_nope_head_dim: the part of a query head compared with the latent
  int rope = 0;     // qk_rope_head_dim: the rotated part, compared with the shared rope key
  int kv_lora = 0;  // kv_lora_rank: the latent's width
  int v_head = 0;   // v_head_dim
  const float* kv_a_norm = nullptr;  // [kv_lora]: RMSNorm of the latent before it is cached
  float latent_eps = 1e-6f;
  float rope_factor = 1.f;      // YaRN: the rotated parts are scaled by this (cos/sin scaling)
  std::vector<TensorView> k_b;  // [n_heads] x [nope, kv_lora]: q_nope -> the latent space
  std::vector<TensorView> v_b;  // [n_heads] x [kv_lora, v_head]: latent -> the head's value

  bool empty() const { return k_b.empty(); }
  int row() const { return kv_lora + rope; }  // the cached row per token
};

}  // namespace shardlm
