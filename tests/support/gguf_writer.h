// Test support: writes GGUF files (any metadata, F32/F16/BF16/quantised tensors) so tests can
// build tiny models and malformed files themselves.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/dtype.h"

namespace shardlm::testing {

struct GgufTensorSpec {
  std::string name;
  std::vector<int64_t> ne;  // GGML order
  DType dtype = DType::F32;
  std::vector<float> values;  // quantised with the reference quantiser when dtype is quantised
};

using GgufMetaValue =
    std::variant<uint32_t, int32_t, float, bool, std::string, uint64_t, std::vector<std::string>,
                 std::vector<int32_t>, std::vector<float>, uint8_t, int8_t, uint16_t, int16_t,
                 int64_t, double>;

class GgufWriter {
 public:
  void set(const std::string& key, GgufMetaValue v) { meta_.emplace_back(key, std::move(v)); }
  void add_tensor(GgufTensorSpec t) { tensors_.push_back(std::move(t)); }
  std::vector<uint8_t> bytes(uint32_t version = 3, uint32_t alignment = 32) const;
  void write(const std::string& path, uint32_t version = 3) const;

 private:
  std::vector<std::pair<std::string, GgufMetaValue>> meta_;
  std::vector<GgufTensorSpec> tensors_;
};

}  // namespace shardlm::testing
