// What a backend needs to know about the model it will run: the sizes its scratch buffers are cut
// for and the kinds of layers it must have ops for. The model layer fills it from a ModelConfig
// (model/model_shape.h), so the backend never sees the config.
#pragma once

#include <cstdint>
#include <string>

namespace shardlm {

struct ModelShape {
  std::string name;  // for messages: the model's name, else its architecture
  int64_t d_model = 0;
  int64_t ffn_dim = 0;
  int64_t q_dim = 0;
  int64_t max_matmul_k = 0;    // the widest input row of any of its matmuls
  int64_t attention_dim = 0;   // the key row attention reads (MLA: the cached latent row)
  bool latent_attention = false;  // multi-head latent attention (deepseek_v2/v3)
  // Mixture-of-experts layers (0 experts: none): experts, top-k, and the widths they multiply.
  int n_experts = 0, n_experts_used = 0;
  int64_t moe_ffn = 0, moe_shared_ffn = 0;
};

}  // namespace shardlm
