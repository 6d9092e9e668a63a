// Test support: writes .safetensors files from named fp32 tensors, stored as F32, F16 or BF16 (or
// F8_E4M3 for a tensor that asks: its values are then E4M3 values, written as their codes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace shardlm::testing {

struct SafetensorsTensor {
  std::string name;
  std::vector<int64_t> shape;  // safetensors (row-major, outermost first) order
  std::vector<float> values;
  std::optional<DType> dtype = std::nullopt;  // this tensor's type instead of the file's
};

std::vector<uint8_t> safetensors_bytes(const std::vector<SafetensorsTensor>& tensors, DType dtype);
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       DType dtype);

}  // namespace shardlm::testing
