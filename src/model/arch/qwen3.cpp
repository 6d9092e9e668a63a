// Qwen3 (dense): no q/k/v biases, per-head RMSNorm on q and k before rope, neox-style rope, and a
// head size that need not equal d_model / n_heads.
#include "model/architecture.h"

namespace shardlm {

Architecture qwen3_architecture() {
  return {.name = "qwen3",
          .hf_model_types = {"qwen3"},
          .qk_norm = true,
          .gguf_rope_style = RopeStyle::kNeox};
}

}  // namespace shardlm
