// The CPU matmul on F8_E4M3_G128 weights (an FP8 checkpoint's matrices as published: each row's
// E4M3 codes, then a scale per 128 columns; core/fp8.h). Rows are taken 16 at a time, widened to
// BF16 into a per-thread buffer (each code times its group's scale, rounded as the load-time
// dequantisation rounds: fp8_group_row_to_bf16), and multiplied by the ISA's own BF16 kernel. So
// the products, and their order, are those of the matrix dequantised to BF16 in memory, bit for
// bit, for half its memory. Internal to the CPU kernel tables (vec_dot_*.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {

// One F8_E4M3_G128 row of k elements as BF16 bits (fp8_group_row_to_bf16, core/fp8.h, and its AVX2
// twin, bit-identical).
using Fp8RowToBf16 = void (*)(const uint8_t* row, int64_t k, uint16_t* out);
void fp8_group_row_to_bf16_avx2(const uint8_t* row, int64_t k, uint16_t* out);

// Rows widened at once: a multiple of every BF16 kernel's row tile, so that the BF16 kernel sees
// the row tiles it would see on the BF16 matrix (matmul's row chunks start at multiples of 16).
inline constexpr int64_t kFp8WidenRows = 16;

template <GemmFn kBf16, Fp8RowToBf16 kWiden>
void gemm_fp8_groups(int64_t k, const uint8_t* w, size_t w_stride, const uint8_t* a,
                     size_t a_stride, float* y, int64_t ldy, int64_t nr, int64_t nt) {
  thread_local std::vector<uint16_t> rows_bf16;
  const auto need = static_cast<size_t>(kFp8WidenRows * k);
  if (rows_bf16.size() < need) rows_bf16.resize(need);
  const size_t stride = static_cast<size_t>(k) * sizeof(uint16_t);
  for (int64_t r0 = 0; r0 < nr; r0 += kFp8WidenRows) {
    const int64_t rows = std::min(kFp8WidenRows, nr - r0);
    for (int64_t r = 0; r < rows; ++r) {
      kWiden(w + static_cast<size_t>(r0 + r) * w_stride, k, rows_bf16.data() + r * k);
    }
    kBf16(k, reinterpret_cast<const uint8_t*>(rows_bf16.data()), stride, a, a_stride, y + r0, ldy,
          rows, nt);
  }
}

}  // namespace shardlm::cpu
