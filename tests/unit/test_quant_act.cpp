// Activation quantisation: the AVX2 quantiser writes exactly the bytes of the scalar reference.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/vec_dot.h"
#include "backend/cpu/vec_dot_avx2.h"

namespace shardlm::cpu {
namespace {

TEST(QuantAct, Avx2MatchesScalarBitForBit) {
  if (!cpu_isa_supported(CpuIsa::Avx2)) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 2.f);
  const int64_t k = 32 * 48;
  std::vector<float> x(static_cast<size_t>(k));
  for (auto& v : x) v = nd(rng);
  x[5] = 40.f;                                     // an outlier block
  std::fill(x.begin() + 64, x.begin() + 96, 0.f);  // an all-zero block
  for (int j = 0; j < 32; ++j) x[static_cast<size_t>(96 + j)] = (j - 16) * 0.5f;  // ties at .5
  const size_t bytes = static_cast<size_t>(k / 32) * (sizeof(BlockQ8A) + sizeof(float));
  std::vector<uint8_t> a(bytes), b(bytes);
  quantize_act_q8a(x.data(), a.data(), k);
  quantize_act_q8a_avx2(x.data(), b.data(), k);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), bytes), 0);
}

}  // namespace
}  // namespace shardlm::cpu
