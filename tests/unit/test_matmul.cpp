// matmul on every weight type and every ISA this CPU has, against an fp64 reference on the
// dequantised weights (bounds the activation quantisation error) and against the scalar kernels
// (same integer arithmetic, so only float summation order may differ).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {
namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> dequant;  // n x k
  TensorView view;
};

Weights make_weights(DType t, int64_t k, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  Weights w;
  w.bytes.resize(row_bytes(t, k) * n);
  w.dequant.resize(static_cast<size_t>(k * n));
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < n; ++r) {
    for (auto& v : row) v = dist(rng);
    quantize_row(t, row.data(), w.bytes.data() + r * row_bytes(t, k), k);
    dequantize_row(t, w.bytes.data() + r * row_bytes(t, k), w.dequant.data() + r * k, k);
  }
  w.view.name = "test.weight";
  w.view.dtype = t;
  w.view.ne = {k, n, 1, 1};
  w.view.n_dims = 2;
  w.view.data = w.bytes.data();
  return w;
}

std::vector<float> random_acts(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  v[0] = 6.0f;  // an outlier, as real activations have
  return v;
}

// ||y - ref|| / sqrt(sum over outputs and i of (w_i x_i)^2): normalised by the size of the terms
// rather than of the result, so a dot product that cancels to near zero does not inflate it.
double normalised_error(const std::vector<float>& y, const std::vector<double>& ref,
                        double term_norm2) {
  double num = 0;
  for (size_t i = 0; i < y.size(); ++i) num += (y[i] - ref[i]) * (y[i] - ref[i]);
  return std::sqrt(num / term_norm2);
}

bool is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

struct Shape {
  int64_t k, n, tokens;
};

void check_type(DType t, const std::vector<Shape>& shapes) {
  std::vector<CpuIsa> isas;
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512}) {
    if (cpu_isa_supported(isa)) isas.push_back(isa);
  }
  ThreadPool pool1(1), pool2(2);
  MatmulWorkspace ws;
  uint32_t seed = 17;
  for (const Shape& s : shapes) {
    const Weights w = make_weights(t, s.k, s.n, ++seed);
    const auto x = random_acts(s.k * s.tokens, ++seed);
    std::vector<double> ref(static_cast<size_t>(s.n * s.tokens));
    double terms = 0;
    for (int64_t tok = 0; tok < s.tokens; ++tok) {
      for (int64_t r = 0; r < s.n; ++r) {
        double acc = 0;
        for (int64_t i = 0; i < s.k; ++i) {
          const double p = double(w.dequant[r * s.k + i]) * x[tok * s.k + i];
          acc += p;
          terms += p * p;
        }
        ref[tok * s.n + r] = acc;
      }
    }
    std::vector<float> y_scalar(ref.size());
    matmul(w.view, x.data(), s.tokens, y_scalar.data(), pool1, ws, CpuIsa::Scalar);
    const std::string where = std::string(dtype_name(t)) + " k=" + std::to_string(s.k) +
                              " n=" + std::to_string(s.n) + " tokens=" + std::to_string(s.tokens);
    // 8-bit activations: rounding error ~ max|x| / 440 per element, ~1.4% of a Gaussian element
    // next to the outlier; float weights: fp32 summation only.
    const double ref_tol = is_float(t) ? 1e-5 : 3e-2;
    EXPECT_LT(normalised_error(y_scalar, ref, terms), ref_tol) << where << " scalar vs fp64";
    for (CpuIsa isa : isas) {
      for (ThreadPool* pool : {&pool1, &pool2}) {
        std::vector<float> y(ref.size(), NAN);
        matmul(w.view, x.data(), s.tokens, y.data(), *pool, ws, isa);
        std::vector<double> ys(y_scalar.begin(), y_scalar.end());
        const std::string tag =
            where + " isa=" + cpu_isa_name(isa) + " threads=" + std::to_string(pool->size());
        EXPECT_LT(normalised_error(y, ys, terms), 1e-5) << tag << " vs scalar";
        EXPECT_LT(normalised_error(y, ref, terms), ref_tol) << tag << " vs fp64";
      }
    }
  }
}

const std::vector<Shape> kBlock32Shapes = {{32, 1, 1},   {64, 7, 3},     {576, 33, 17},
                                           {576, 70, 1}, {1536, 21, 70}, {96, 130, 5}};
const std::vector<Shape> kBlock256Shapes = {
    {256, 1, 1}, {256, 7, 3}, {768, 33, 17}, {512, 70, 1}, {256, 21, 70}};
const std::vector<Shape> kFloatShapes = {{1, 1, 1},    {13, 7, 3},   {576, 33, 17},
                                         {100, 70, 1}, {64, 21, 70}, {1536, 5, 2}};

TEST(Matmul, F32) {
  check_type(DType::F32, kFloatShapes);
}
TEST(Matmul, F16) {
  check_type(DType::F16, kFloatShapes);
}
TEST(Matmul, BF16) {
  check_type(DType::BF16, kFloatShapes);
}
TEST(Matmul, Q8_0) {
  check_type(DType::Q8_0, kBlock32Shapes);
}
TEST(Matmul, Q4_0) {
  check_type(DType::Q4_0, kBlock32Shapes);
}
TEST(Matmul, Q4_1) {
  check_type(DType::Q4_1, kBlock32Shapes);
}
TEST(Matmul, Q4_K) {
  check_type(DType::Q4_K, kBlock256Shapes);
}
TEST(Matmul, Q5_K) {
  check_type(DType::Q5_K, kBlock256Shapes);
}
TEST(Matmul, Q6_K) {
  check_type(DType::Q6_K, kBlock256Shapes);
}

// Batch invariance: a token's outputs are bit-identical whether it is multiplied alone (the decode
// kernels) or among many (the prefill tiles), on every type and ISA; the serving engine relies
// on it so that batching never changes a greedy result.
TEST(Matmul, TokenAloneEqualsTokenInBatch) {
  ThreadPool pool(2);
  MatmulWorkspace ws;
  const int64_t k = 512, n = 37, tokens = 9;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const Weights w = make_weights(t, k, n, 99);
    const auto x = random_acts(k * tokens, 5);
    for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512}) {
      if (!cpu_isa_supported(isa)) continue;
      std::vector<float> batch(static_cast<size_t>(n * tokens));
      matmul(w.view, x.data(), tokens, batch.data(), pool, ws, isa);
      for (int64_t tok = 0; tok < tokens; ++tok) {
        std::vector<float> alone(static_cast<size_t>(n));
        matmul(w.view, x.data() + tok * k, 1, alone.data(), pool, ws, isa);
        for (int64_t r = 0; r < n; ++r) {
          ASSERT_EQ(alone[r], batch[tok * n + r])
              << dtype_name(t) << " isa=" << cpu_isa_name(isa) << " token " << tok << " row " << r;
        }
      }
    }
  }
}

TEST(Matmul, RejectsUnsupportedShape) {
  Weights w = make_weights(DType::F32, 8, 2, 1);
  w.view.dtype = DType::Q8_0;
  w.view.ne = {40, 1, 1, 1};  // not a multiple of the block size
  ThreadPool pool(1);
  MatmulWorkspace ws;
  std::vector<float> x(40), y(1);
  EXPECT_THROW(matmul(w.view, x.data(), 1, y.data(), pool, ws), std::invalid_argument);
}

}  // namespace
}  // namespace shardlm::cpu
