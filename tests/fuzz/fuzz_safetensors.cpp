// libFuzzer target for the safetensors reader: parses the input as an in-memory .safetensors image
// and touches the first and last byte of every tensor. Malformed input may throw shardlm::Error
// and nothing else: any other exception (nlohmann::json's included), crash, sanitizer report or
// hang is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/safetensors_file.h"

namespace {
volatile uint8_t g_sink;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    shardlm::SafetensorsFile f(data, size, "fuzz.safetensors");
    for (const auto& t : f.tensors()) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      const size_t n = t.nbytes();
      if (n > 0) g_sink = static_cast<uint8_t>(p[0] ^ p[n - 1]);
      (void)t.shape_str();
      if (f.find_tensor(t.name) == nullptr) __builtin_trap();
    }
    for (const auto& [key, value] : f.metadata())
      g_sink = static_cast<uint8_t>(key.size() + value.size());
  } catch (const shardlm::Error&) {
  }
  return 0;
}
