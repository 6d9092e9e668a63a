// Mistral: the llama block, optionally with sliding-window attention (v0.1).
#include "model/architecture.h"

namespace shardlm {

Architecture mistral_architecture() {
  return {.name = "mistral", .hf_model_types = {"mistral"}, .gguf_rope_style = RopeStyle::kNormal};
}

}  // namespace shardlm
