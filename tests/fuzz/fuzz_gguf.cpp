// libFuzzer target for the GGUF reader: parses the input as an in-memory GGUF image, reads every
// metadata value and touches the first and last byte of every tensor, then builds a tokenizer
// from the tokenizer.ggml.* keys and runs a short encode/decode. Malformed input may throw
// shardlm::Error and nothing else: any other exception, crash, sanitizer report or hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/gguf_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_gguf.h"

namespace {

volatile uint8_t g_sink;

void read_metadata(const shardlm::GgufFile& g) {
  for (const auto& [key, value] : g.metadata()) {
    (void)value.to_display();
    try {
      if (value.type == shardlm::GgufType::kString) (void)g.get_string(key);
      if (value.is_integer()) (void)g.get_int(key), (void)g.get_bool(key);
      (void)g.get_float(key);
    } catch (const shardlm::Error&) {
    }
  }
}

void touch_tensors(const shardlm::GgufFile& g) {
  for (const auto& t : g.tensors()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    const size_t n = t.nbytes();
    if (n > 0) g_sink = static_cast<uint8_t>(p[0] ^ p[n - 1]);
    (void)t.shape_str();
    if (g.find_tensor(t.name) == nullptr) __builtin_trap();
  }
}

void run_tokenizer(const shardlm::GgufFile& g) {
  auto tok = shardlm::Tokenizer::create(shardlm::tokenizer_spec_from_gguf(g));
  const std::vector<int32_t> ids = tok->encode("Hello world <s>\xe2\x96\x81 12", true);
  (void)tok->decode(ids);
  for (int32_t id = 0; id < tok->vocab_size() && id < 64; ++id) (void)tok->token_bytes(id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    shardlm::GgufFile g(data, size, "fuzz.gguf");
    read_metadata(g);
    touch_tensors(g);
    run_tokenizer(g);
  } catch (const shardlm::Error&) {
  }
  return 0;
}
