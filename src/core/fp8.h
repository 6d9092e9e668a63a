// FP8 E4M3 on the host: the codec (sign, 4 exponent bits with bias 7, 3 mantissa bits; 0x7f/0xff
// are NaN and 448 is the largest finite value; encoding rounds to nearest, ties to even, and
// saturates) and the byte layout of an F8_E4M3 matrix, the same in host memory (FP8 checkpoints,
// model/fp8_checkpoint.h) and device memory (backend/cuda/weight_store.h):
//   [rows][cols] E4M3 codes, zero-padded to a multiple of 256 bytes, then one fp32 scale per row;
//   w[j][i] ~= e4m3(q[j][i]) * scale[j].
// An F8_E4M3_G128 matrix (the CPU's form of an FP8 checkpoint's matrices) is rows of
//   [cols] E4M3 codes, then one fp32 scale per 128 columns (ceil(cols / 128) of them);
//   w[j][i] ~= e4m3(q[j][i]) * scale[j][i / 128],
// which holds per-tensor, per-channel and 128 x 128 block scales alike.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace shardlm {

inline float e4m3_to_float(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7) return NAN;
  const float mag = e == 0 ? std::ldexp(m / 8.f, -6) : std::ldexp(1.f + m / 8.f, e - 7);
  return (b & 0x80) ? -mag : mag;
}

// The nearest E4M3 code (ties to the even code), saturating at +-448; NaN gives 0x7f.
inline uint8_t float_to_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fmin(std::fabs(f), 448.f);
  int lo = 0, hi = 126;  // codes 0..126 are the non-negative finite values, increasing
  while (lo < hi) {      // the first code whose value is >= a
    const int mid = (lo + hi) / 2;
    if (e4m3_to_float(static_cast<uint8_t>(mid)) < a)
      lo = mid + 1;
    else
      hi = mid;
  }
  int code = lo;
  if (lo > 0) {
    const float below = e4m3_to_float(static_cast<uint8_t>(lo - 1));
    const float above = e4m3_to_float(static_cast<uint8_t>(lo));
    if (a - below < above - a || (a - below == above - a && (lo - 1) % 2 == 0)) code = lo - 1;
  }
  return static_cast<uint8_t>(sign | code);
}

// The scales of an FP8 checkpoint's matrix: the codes at row r, column c are multiplied by
// at(r, c). Per-channel scales are blocks of one row, a per-tensor scale one block of the whole
// matrix, block-wise scales (DeepSeek-V3's 128 x 128) blocks of block_rows x block_cols.
struct Fp8Scales {
  std::vector<float> v;  // [row blocks][col_blocks]
  int64_t block_rows = 1, block_cols = 1, col_blocks = 1;
  float at(int64_t r, int64_t c) const {
    return v[static_cast<size_t>((r / block_rows) * col_blocks + c / block_cols)];
  }
  bool per_row(int64_t cols) const { return block_cols >= cols; }  // one scale across a row
};

// Whether view w is an FP8 checkpoint's matrix with one scale per row (per tensor or per channel,
// or its columns within one block's: a whole row of wide blocks, or a column cut inside one): then
// it can take the row layout below, and a cut of its columns keeps its scales.
inline bool fp8_scaled_by_rows(const TensorView& w) {
  if (!w.fp8_scales || w.ne[0] <= 0) return false;
  const int64_t bc = w.fp8_scales->block_cols;  // the view's columns within one block's
  return w.fp8_col0 / bc == (w.fp8_col0 + w.ne[0] - 1) / bc;
}

// Where the row scales of an F8_E4M3 matrix of numel codes start, and its whole size in bytes.
inline size_t fp8_scales_offset(int64_t numel) {
  return (static_cast<size_t>(numel) + 255) / 256 * 256;
}
inline size_t fp8_matrix_bytes(int64_t numel, int64_t rows) {
  return fp8_scales_offset(numel) + static_cast<size_t>(rows) * sizeof(float);
}

// The row scales of an F8_E4M3 view in the layout above ([rows] fp32).
inline const float* fp8_row_scales(const TensorView& w) {
  return reinterpret_cast<const float*>(static_cast<const uint8_t*>(w.data) +
                                        fp8_scales_offset(w.numel()));
}

// Whether FP8 view w (fp8_scales) takes the F8_E4M3_G128 layout: one scale across each 128
// columns of a row (scales per row, or blocks whose width is a multiple of 128 with the view's
// columns starting on a multiple of 128), rows of a multiple of 4 elements.
inline bool fp8_groups_fit(const TensorView& w) {
  if (!w.fp8_scales || w.ne[0] % 4 != 0) return false;
  if (fp8_scaled_by_rows(w)) return true;
  return w.fp8_scales->block_cols % kFp8GroupCols == 0 && w.fp8_col0 % kFp8GroupCols == 0;
}

// e4m3_to_float of every code, as a table of 256 (made once).
const float* e4m3_values();

// The scales of one F8_E4M3_G128 row of k codes.
inline const float* fp8_group_scales(const uint8_t* row, int64_t k) {
  return reinterpret_cast<const float*>(row + k);
}

// One F8_E4M3_G128 row of k elements as fp32: each code times its group's scale, the values the
// CPU matmul multiplies by (it applies the scale to each group's sum instead).
void fp8_group_row_to_float(const uint8_t* row, int64_t k, float* out);

// Row r of an F8_E4M3 host view as fp32 (codes times the row's scale): out[0 .. ne[0]).
inline void dequantize_fp8_row(const TensorView& w, int64_t r, float* out) {
  const uint8_t* q = w.row(r);
  const float s = fp8_row_scales(w)[r];
  for (int64_t i = 0; i < w.ne[0]; ++i) out[i] = e4m3_to_float(q[i]) * s;
}

}  // namespace shardlm
