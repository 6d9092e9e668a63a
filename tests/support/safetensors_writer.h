// Test support: writes .safetensors files from named fp32 tensors, stored as F32, F16 or BF16.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace shardlm::testing {

struct SafetensorsTensor {
  std::string name;
  std::vector<int64_t> shape;  // safetensors (row-major, outermost first) order
  std::vector<float> values;
};

std::vector<uint8_t> safetensors_bytes(const std::vector<SafetensorsTensor>& tensors, DType dtype);
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       DType dtype);

}  // namespace shardlm::testing
