// shardlm_shaped_model: writes a GGUF model with deterministic (not trained) weights in the shape
// of a real one, for timings on the GPU machine, where the real file cannot be carried: the CUDA
// backend holds every model in BF16, so equal shapes cost the same.
//
//   shardlm_shaped_model OUT.gguf smollm2-135m|llama-1b [DTYPE=BF16]
#include <cstdio>
#include <string>

#include "core/error.h"
#include "tiny_model.h"

namespace {

bool preset(const std::string& name, shardlm::testing::TinyModelSpec& s) {
  if (name == "smollm2-135m") {  // SmolLM2-135M: the default model's shape
    s.d_model = 576, s.n_layers = 30, s.n_heads = 9, s.n_kv_heads = 3, s.head_dim = 64;
    s.ffn_dim = 1536, s.vocab = 49152, s.rope_theta = 100000.f, s.context = 8192;
    return true;
  }
  if (name == "llama-1b") {  // Llama-3.2-1B's shape
    s.d_model = 2048, s.n_layers = 16, s.n_heads = 32, s.n_kv_heads = 8, s.head_dim = 64;
    s.ffn_dim = 8192, s.vocab = 128256, s.rope_theta = 500000.f, s.context = 8192;
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  shardlm::testing::TinyModelSpec spec;
  if (argc < 3 || !preset(argv[2], spec)) {
    std::fprintf(stderr, "usage: %s OUT.gguf smollm2-135m|llama-1b [F32|F16|BF16|Q8_0|Q4_1]\n",
                 argv[0]);
    return 2;
  }
  shardlm::DType t = shardlm::DType::BF16;
  if (argc > 3) {
    const std::string want = argv[3];
    bool known = false;
    for (auto d : {shardlm::DType::F32, shardlm::DType::F16, shardlm::DType::BF16,
                   shardlm::DType::Q8_0, shardlm::DType::Q4_1}) {
      if (shardlm::dtype_name(d) == want) t = d, known = true;
    }
    if (!known) {
      std::fprintf(stderr, "%s: unknown weight type '%s' (F32, F16, BF16, Q8_0 or Q4_1)\n", argv[0],
                   argv[3]);
      return 2;
    }
  }
  try {
    shardlm::testing::write_tiny_gguf_model(argv[1], spec, t);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
