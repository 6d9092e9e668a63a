// Qwen2/2.5: the llama block with biases on the q/k/v projections and neox-style rope.
#include "model/architecture.h"

namespace shardlm {

Architecture qwen2_architecture() {
  return {.name = "qwen2",
          .hf_model_types = {"qwen2"},
          .qkv_bias = true,
          .gguf_rope_style = RopeStyle::kNeox};
}

}  // namespace shardlm
