// shardlm_tiny_model: writes a tiny deterministic GGUF model (tests/support/tiny_model.h) for the
// end-to-end tests, which need a model whose heads, KV heads, FFN width and vocabulary split over
// two tensor-parallel ranks (the default model's 9 heads do not).
//
//   shardlm_tiny_model OUT.gguf [--layers N] [--arch llama|qwen2|qwen3|mistral]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "tiny_model.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.gguf [--layers N] [--arch NAME]\n", argv[0]);
    return 2;
  }
  shardlm::testing::TinyModelSpec spec;
  spec.ffn_dim = 128;  // each half of the down projection is whole Q8_0 blocks
  spec.n_layers = 4;
  spec.context = 512;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--layers") {
      spec.n_layers = std::atoi(argv[i + 1]);
    } else if (flag == "--arch") {
      spec.arch = argv[i + 1];
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  try {
    shardlm::testing::write_tiny_gguf_model(argv[1], spec, shardlm::DType::Q8_0);
  } catch (const shardlm::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
