// Mixtral (8x7B, 8x22B): the mistral block with every FFN a mixture of experts: softmax router,
// top-2 of 8 experts renormalised, each expert as wide as intermediate_size (w1 = gate, w3 = up,
// w2 = down). llama.cpp writes its GGUF files as "llama" with an expert count.
#include "model/architecture.h"

namespace shardlm {

Architecture mixtral_architecture() {
  return {.name = "mixtral",
          .hf_model_types = {"mixtral"},
          .gguf_arch = "llama",
          .moe = MoeFields{.experts_key = "num_local_experts",
                           .ffn_key = "intermediate_size",
                           .always_norm_topk = true,
                           .gguf_norm_topk = true},
          .gguf_rope_style = RopeStyle::kNormal};
}

}  // namespace shardlm
