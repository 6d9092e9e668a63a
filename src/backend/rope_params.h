// Rotary position embedding as the rope ops take it: the pairing style and one angular frequency
// per rotated pair (the model layer derives them from its config: model/rope_config.h).
#pragma once

#include <vector>

namespace shardlm {

// How rotary embeddings pair up dimensions: kNormal rotates (x[2i], x[2i+1]) (GGUF llama files,
// whose Q/K rows were permuted by the converter); kNeox rotates (x[i], x[i + d/2]) (Hugging Face
// weights, and GGUF qwen2/qwen3).
enum class RopeStyle { kNormal, kNeox };

struct RopeParams {
  int head_dim = 0;  // the rotated part of a head
  RopeStyle style = RopeStyle::kNeox;
  std::vector<float> inv_freq;  // head_dim / 2 angular frequencies (theta^(-2i/d) / factor_i)
};

}  // namespace shardlm
