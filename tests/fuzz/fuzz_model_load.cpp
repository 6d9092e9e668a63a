// libFuzzer target for whole-model loading from GGUF: writes the input to a temporary .gguf file
// and calls shardlm::load_model on it, which covers metadata -> ModelConfig, tokenizer spec,
// config validation and weight binding with its shape checks, plus tokenizer construction.
// Malformed input may throw shardlm::Error and nothing else.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

const std::string& temp_path() {
  static const std::string path = "/tmp/shardlm_fuzz_model_" + std::to_string(getpid()) + ".gguf";
  return path;
}

bool write_file(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = temp_path();
  if (!write_file(path, data, size)) __builtin_trap();
  try {
    auto model = shardlm::load_model(path);
    (void)model->config.summary();
    (void)model->weight_bytes();
    (void)model->tensor_type_counts();
    auto tok = shardlm::Tokenizer::create(model->tokenizer);
    (void)tok->decode(tok->encode("Hi there", true));
  } catch (const shardlm::Error&) {
  }
  std::remove(path.c_str());
  return 0;
}
