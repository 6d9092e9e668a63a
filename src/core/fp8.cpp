// The table of E4M3 values and the F8_E4M3_G128 row's values (core/fp8.h).
#include "core/fp8.h"

#include <array>

namespace shardlm {

const float* e4m3_values() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) {
      t[static_cast<size_t>(c)] = e4m3_to_float(static_cast<uint8_t>(c));
    }
    return t;
  }();
  return table.data();
}

void fp8_group_row_to_float(const uint8_t* row, int64_t k, float* out) {
  const float* lut = e4m3_values();
  const float* scales = fp8_group_scales(row, k);
  for (int64_t i = 0; i < k; ++i) out[i] = lut[row[i]] * scales[i / kFp8GroupCols];
}

}  // namespace shardlm
