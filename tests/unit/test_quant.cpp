// Reference quantisation round trips for every GGML weight type, and known-layout spot checks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/quant.h"
#include "core/dtype.h"
#include "core/fp16.h"

namespace shardlm::cpu {
namespace {

std::vector<float> random_row(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// Normalised RMS error: ||a - b|| / ||b||.
double nrmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

struct RoundTripCase {
  DType type;
  double tolerance;  // normalised RMS error of dequantise(quantise(x)) for Gaussian x
};

class QuantRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(QuantRoundTrip, ErrorWithinBound) {
  const auto [type, tol] = GetParam();
  const int64_t n = 256 * 6;
  for (uint32_t seed : {1u, 2u, 3u}) {
    const auto x = random_row(n, seed, 0.5f + seed);
    std::vector<uint8_t> q(row_bytes(type, n));
    quantize_row(type, x.data(), q.data(), n);
    std::vector<float> y(static_cast<size_t>(n));
    dequantize_row(type, q.data(), y.data(), n);
    EXPECT_LT(nrmse(y, x), tol) << dtype_name(type) << " seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, QuantRoundTrip,
    ::testing::Values(RoundTripCase{DType::F32, 1e-7}, RoundTripCase{DType::F16, 1e-3},
                      RoundTripCase{DType::BF16, 5e-3}, RoundTripCase{DType::Q8_0, 0.01},
                      RoundTripCase{DType::Q4_0, 0.15}, RoundTripCase{DType::Q4_1, 0.12},
                      RoundTripCase{DType::Q4_K, 0.12}, RoundTripCase{DType::Q5_K, 0.06},
                      RoundTripCase{DType::Q6_K, 0.04}),
    [](const auto& info) { return std::string(dtype_name(info.param.type)); });

// Hand-built blocks pin the GGML layouts (nibble order, K-quant scale packing, Q6_K bit planes).
TEST(QuantLayout, Q4_1NibbleOrder) {
  BlockQ4_1 b{};
  b.d = fp32_to_fp16(1.0f);
  b.m = fp32_to_fp16(-2.0f);
  b.qs[0] = 0x53;  // element 0 = 3, element 16 = 5
  float y[32];
  dequantize_row(DType::Q4_1, &b, y, 32);
  EXPECT_FLOAT_EQ(y[0], 1.0f);
  EXPECT_FLOAT_EQ(y[16], 3.0f);
  EXPECT_FLOAT_EQ(y[1], -2.0f);
}

TEST(QuantLayout, Q4_KScalePacking) {
  BlockQ4_K b{};
  b.d = fp32_to_fp16(1.0f);
  b.dmin = fp32_to_fp16(1.0f);
  // sub-block 5: scale = low nibble of byte 9 | (top 2 bits of byte 1) << 4; min = high nibble of
  // byte 9 | (top 2 bits of byte 5) << 4.
  b.scales[9] = 0x32;   // scale low 2, min low 3
  b.scales[1] = 0x40;   // scale high bits 1 -> 16 + 2 = 18
  b.scales[5] = 0x80;   // min high bits 2 -> 32 + 3 = 35
  b.qs[64 + 0] = 0x10;  // element 160 (chunk 2, high nibble) = 1
  float y[256];
  dequantize_row(DType::Q4_K, &b, y, 256);
  EXPECT_FLOAT_EQ(y[160], 18.0f - 35.0f);
  EXPECT_FLOAT_EQ(y[161], -35.0f);
  EXPECT_FLOAT_EQ(y[0], 0.0f);
}

TEST(QuantLayout, Q6_KBitPlanes) {
  BlockQ6_K b{};
  b.d = fp32_to_fp16(1.0f);
  for (auto& s : b.scales) s = 1;
  // element 128 + 64 + 3 (half 1, group 2): ql[64 + 3] high nibble, qh[32 + 3] bits 4-5.
  b.ql[64 + 3] = 0xA0;
  b.qh[32 + 3] = 0x20;
  float y[256];
  dequantize_row(DType::Q6_K, &b, y, 256);
  EXPECT_FLOAT_EQ(y[128 + 64 + 3], static_cast<float>((0xA | (2 << 4)) - 32));
  EXPECT_FLOAT_EQ(y[0], -32.0f);
}

}  // namespace
}  // namespace shardlm::cpu
