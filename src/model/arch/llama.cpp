// Llama 2/3/3.1, SmolLM, TinyLlama: the reference decoder block (RMSNorm, GQA attention with
// rope, SiLU-gated MLP). GGUF files of this arch have Q/K permuted for interleaved rope.
#include "model/architecture.h"

namespace shardlm {

Architecture llama_architecture() {
  return {.name = "llama", .hf_model_types = {"llama"}, .gguf_rope_style = RopeStyle::kNormal};
}

}  // namespace shardlm
