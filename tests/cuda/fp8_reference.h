// The CPU reference for the FP8 kernels: an E4M3 codec written from the format's definition (sign,
// 4 exponent bits with bias 7, 3 mantissa bits; 0x7f/0xff are NaN, so 448 is the largest finite
// value; rounding to nearest, ties to the even code, saturating), per-row quantisation as
// fp8_quant.cuh defines it, and dot products in fp64.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

namespace shardlm::testing {

inline float e4m3_to_float(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7) return NAN;
  const float mag = e == 0 ? std::ldexp(m / 8.f, -6) : std::ldexp(1.f + m / 8.f, e - 7);
  return (b & 0x80) ? -mag : mag;
}

// The non-negative finite values in code order (0x00 .. 0x7e), which is increasing order.
inline const std::array<float, 127>& e4m3_values() {
  static const std::array<float, 127> v = [] {
    std::array<float, 127> a{};
    for (int c = 0; c < 127; ++c)
      a[static_cast<size_t>(c)] = e4m3_to_float(static_cast<uint8_t>(c));
    return a;
  }();
  return v;
}

inline uint8_t float_to_e4m3(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::min(std::fabs(f), 448.f);
  const auto& v = e4m3_values();
  const auto hi = std::lower_bound(v.begin(), v.end(), a) - v.begin();  // first value >= a
  int code = static_cast<int>(hi);
  if (hi > 0) {
    const float below = v[static_cast<size_t>(hi - 1)], above = v[static_cast<size_t>(hi)];
    if (a - below < above - a || (a - below == above - a && (hi - 1) % 2 == 0)) code = int(hi - 1);
  }
  return static_cast<uint8_t>(sign | code);
}

struct Fp8Rows {
  int64_t k = 0, n = 0;
  std::vector<uint8_t> q;    // [n][k] E4M3
  std::vector<float> scale;  // [n]
  double at(int64_t j, int64_t i) const {
    return double(e4m3_to_float(q[static_cast<size_t>(j * k + i)])) * scale[static_cast<size_t>(j)];
  }
};

// Rows of k values (fp32) quantised as quantize_rows_fp8 does: scale = absmax / 448,
// q = e4m3(v * (1 / scale)).
inline Fp8Rows quantize_rows(const std::vector<float>& v, int64_t k, int64_t n) {
  Fp8Rows r;
  r.k = k;
  r.n = n;
  r.q.resize(static_cast<size_t>(k * n));
  r.scale.resize(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) {
    float m = 0.f;
    for (int64_t i = 0; i < k; ++i) m = std::max(m, std::fabs(v[static_cast<size_t>(j * k + i)]));
    const float s = m > 0.f ? m / 448.f : 1.f, inv = 1.f / s;
    r.scale[static_cast<size_t>(j)] = s;
    for (int64_t i = 0; i < k; ++i)
      r.q[static_cast<size_t>(j * k + i)] = float_to_e4m3(v[static_cast<size_t>(j * k + i)] * inv);
  }
  return r;
}

}  // namespace shardlm::testing
