// Qwen3-MoE (Qwen3-30B-A3B, Qwen3-235B-A22B): the qwen3 block (q/k RMSNorm, neox rope) with a
// mixture-of-experts FFN: softmax router, top-k experts (renormalised when norm_topk_prob), no
// shared expert. Dense layers where mlp_only_layers or decoder_sparse_step say so.
#include "model/architecture.h"

namespace shardlm {

Architecture qwen3_moe_architecture() {
  return {.name = "qwen3_moe",
          .hf_model_types = {"qwen3_moe"},
          .qk_norm = true,
          .gguf_arch = "qwen3moe",
          .moe = MoeFields{.experts_key = "num_experts",
                           .ffn_key = "moe_intermediate_size",
                           .sparse_step = true,
                           .gguf_norm_topk = true},
          .gguf_rope_style = RopeStyle::kNeox};
}

}  // namespace shardlm
