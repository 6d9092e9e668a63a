// GGUF block-quantised matrices kept quantised on the GPU (quant_layout.h, quant_linear.h): the
// repacked layout holds the CPU reference's values (a host test: it runs without a GPU too), and
// on fresh random inputs, for every type, the integer GEMV, the BF16-tile GEMM (several tiles) and
// the embedding lookup against the CPU backend and an fp64 reference; a dense layer's matrix is
// kept quantised (its bytes on the device are the layout's, not BF16's) and an expert's is not.
#include <cuda_runtime_api.h>

#include <cmath>
#include <deque>
#include <iostream>

#include "backend/cuda/gemm.h"
#include "backend/cuda/quant_layout.h"
#include "backend/cuda/quant_linear.h"
#include "cuda_test_util.h"

namespace shardlm::testing {
namespace {

constexpr DType kTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q8_0,
                            DType::Q4_K, DType::Q5_K, DType::Q6_K};

// Bits per weight of each layout (quant_layout.h's header), checked against quant_sizes.
double layout_bits(DType t) {
  switch (t) {
    case DType::Q4_0:
      return 4.5;
    case DType::Q4_1:
      return 5.0;
    case DType::Q8_0:
      return 8.5;
    case DType::Q4_K:
      return 6.0;
    default:
      return 10.0;  // Q5_K, Q6_K: a byte a code and an fp32 scale (and offset) per 16 or 32
  }
}

// A dense layer's matrix (QuantLinear::keeps it quantised).
TensorView dense_matrix(DType t, int64_t k, int64_t n, std::mt19937& rng,
                        std::vector<uint8_t>& bytes) {
  TensorView w = make_matrix(t, k, n, rng, bytes);
  w.name = "blk.3.ffn_down.weight";
  return w;
}

// y[t][j] = x[t] . w[j] in fp64 over the CPU's dequantised weights.
std::vector<double> reference(const TensorView& w, const std::vector<float>& x, int64_t tokens) {
  const auto wf = dequantized(w);
  const int64_t k = w.ne[0], n = w.rows();
  std::vector<double> ref(static_cast<size_t>(tokens * n));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += double(wf[j * k + i]) * x[t * k + i];
      ref[t * n + j] = s;
    }
  }
  return ref;
}

TEST(CudaQuant, RepackedRowsHoldTheCpuValues) {  // host only: runs without a GPU
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  const int64_t k = 768, n = 5;
  for (DType t : kTypes) {
    std::vector<uint8_t> bytes;
    const TensorView w = dense_matrix(t, k, n, rng, bytes);
    const auto packed = cuda::repack_quant(w);
    const auto layout = cuda::quant_layout(t);
    ASSERT_TRUE(layout.has_value()) << dtype_name(t);
    const auto sizes = cuda::quant_sizes(*layout, n, k);
    EXPECT_EQ(packed.size(), sizes.total);
    EXPECT_NEAR(8.0 * static_cast<double>(sizes.total) / static_cast<double>(n * k), layout_bits(t),
                0.1)
        << dtype_name(t);
    const auto want = dequantized(w);
    std::vector<float> got(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
      cuda::repacked_row(*layout, packed.data(), n, k, r, got.data());
      for (int64_t i = 0; i < k; ++i) {
        const float a = got[i], b = want[r * k + i];
        ASSERT_NEAR(a, b, 1e-6f * std::max(1.f, std::abs(b)))
            << dtype_name(t) << " row " << r << " element " << i;
      }
    }
  }
  EXPECT_FALSE(cuda::quant_layout(DType::BF16).has_value());
}

TEST(CudaQuant, DenseMatricesStayQuantisedAndExpertsDoNot) {
  SHARDLM_SKIP_WITHOUT_GPU();
  std::mt19937 rng(fresh_seed());
  for (DType t : kTypes) {
    cuda::CudaBackend be(small_cuda_options());
    std::vector<uint8_t> dense_bytes, expert_bytes;
    TensorView expert = make_matrix(t, 512, 64, rng, expert_bytes);
    expert.name = "blk.0.ffn_down_exps.weight";
    WeightSet set;
    set.matrices = {dense_matrix(t, 512, 96, rng, dense_bytes), expert};
    const PreparedWeights dev = be.prepare_weights(set);
    EXPECT_EQ(dev.views.matrices[0].dtype, t);
    EXPECT_EQ(dev.views.matrices[1].dtype, DType::BF16);
    const size_t quant = cuda::quant_sizes(*cuda::quant_layout(t), 96, 512).total;
    EXPECT_EQ(be.weight_bytes(), quant + size_t{512 * 64 * 2}) << dtype_name(t);
  }
}

// Sums of squares for a normalised error over many comparisons (one output alone, where the dot
// product nearly cancels, says little about 8-bit activation rounding).
struct ErrorSum {
  double num = 0, den = 0;
  template <typename T>
  void add(const std::vector<float>& got, const std::vector<T>& ref) {
    for (size_t i = 0; i < got.size(); ++i) {
      const double d = double(got[i]) - double(ref[i]);
      num += std::isfinite(got[i]) ? d * d : 1e300;
      den += double(ref[i]) * double(ref[i]);
    }
  }
  double rel() const { return std::sqrt(num / std::max(den, 1e-300)); }
};

// Decode batches (the integer GEMV) and larger ones (BF16 tiles and cuBLAS) through the backend:
// against the CPU backend (which quantises activations the same way for the 32-element types:
// equal but for the summation order) and an fp64 reference over the dequantised weights (8-bit
// activations: about 0.5% error), over every shape and batch of a type.
TEST(CudaQuant, MatmulMatchesCpuAndFp64) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  std::deque<PreparedWeights> keep;
  for (DType t : kTypes) {
    const bool block32 = t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q8_0;
    ErrorSum vs_ref, vs_cpu;
    // The last shape is over gemv_quant's fused limit: activations rounded by a pass before.
    for (auto [k, n] : {std::pair<int64_t, int64_t>{block32 ? 576 : 512, 192},
                        {1024, 333},
                        {256, 1},
                        {1024, 4201}}) {
      std::vector<uint8_t> bytes;
      const TensorView w = dense_matrix(t, k, n, rng, bytes);
      const TensorView dw = prepared(be, w, keep);
      ASSERT_EQ(dw.dtype, t);
      for (int64_t tokens : {1, 2, 5, 8, 9, 20, 64}) {
        const auto x = randn(static_cast<size_t>(tokens * k), rng);
        const auto ref = reference(w, x, tokens);
        std::vector<float> cpu_y(ref.size());
        cpu.matmul(w, x.data(), tokens, cpu_y.data());
        float* y = be.alloc_floats(ref.size());
        be.matmul(dw, to_device(be, x), tokens, y);
        const auto got = to_host(be, y, ref.size());
        vs_ref.add(got, ref);
        vs_cpu.add(got, cpu_y);
        if (block32 && tokens <= cuda::QuantLinear::kGemvMaxTokens) {  // the same codes
          EXPECT_LT(rel_err(got, cpu_y), 1e-4)
              << dtype_name(t) << " " << k << "x" << n << " x " << tokens << " vs CPU";
        }
      }
    }
    std::cout << "[quant] " << dtype_name(t) << ": rel err vs fp64 " << vs_ref.rel() << ", vs CPU "
              << vs_cpu.rel() << "\n";
    EXPECT_LT(vs_ref.rel(), 1.5e-2) << dtype_name(t);
    // The K-quants' CPU kernels quantise activations per 256, and the GEMM path takes BF16 x.
    EXPECT_LT(vs_cpu.rel(), 2e-2) << dtype_name(t);
  }
}

// Q/K/V and gate/up share one quantisation of the input: equal to one matmul each, and the
// fused gate/up to silu(gate) * up of those.
TEST(CudaQuant, SharedInputAndGateUpMatchSeparateMatmuls) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  std::deque<PreparedWeights> keep;
  // Same types: one launch each (segments, the fused gate/up); mixed: a launch per matrix. The
  // larger shape is past gemv_quant's in-register limit (four rows a warp, two gate/up pairs).
  for (auto [t, tu, k, n] : {std::tuple{DType::Q4_1, DType::Q4_1, 512, 160},
                             {DType::Q6_K, DType::Q6_K, 512, 160},
                             {DType::Q4_1, DType::Q4_K, 512, 160},
                             {DType::Q6_K, DType::Q5_K, 512, 160},
                             {DType::Q4_K, DType::Q4_K, 1024, 2101},
                             {DType::Q8_0, DType::Q8_0, 1024, 2103}}) {
    std::vector<uint8_t> b0, b1;
    const TensorView g = prepared(be, dense_matrix(t, k, n, rng, b0), keep);
    const TensorView u = prepared(be, dense_matrix(tu, k, n, rng, b1), keep);
    for (int64_t tokens : {1, 6, 12, 40}) {  // 12: GEMVs of 8 and 4 tokens; 40: the tiles
      const size_t size = static_cast<size_t>(tokens * n);
      const float* x = to_device(be, randn(static_cast<size_t>(tokens * k), rng));
      float *yg = be.alloc_floats(size), *yu = be.alloc_floats(size);
      be.matmul(g, x, tokens, yg);
      be.matmul(u, x, tokens, yu);
      const auto want_g = to_host(be, yg, size), want_u = to_host(be, yu, size);
      const TensorView* ws[] = {&g, &u};
      float *sg = be.alloc_floats(size), *su = be.alloc_floats(size);
      float* ys[] = {sg, su};
      be.matmul_shared_input(ws, ys, 2, x, tokens);
      EXPECT_LT(rel_err(to_host(be, sg, size), want_g), 1e-6) << dtype_name(t) << " " << tokens;
      EXPECT_LT(rel_err(to_host(be, su, size), want_u), 1e-6) << dtype_name(t) << " " << tokens;
      float *gate = be.alloc_floats(size), *up = be.alloc_floats(size);
      be.gate_up_silu(g, u, x, tokens, gate, up);
      std::vector<float> silu(size);
      for (size_t i = 0; i < size; ++i) {
        silu[i] = want_g[i] / (1.f + std::exp(-want_g[i])) * want_u[i];
      }
      EXPECT_LT(rel_err(to_host(be, gate, size), silu), 1e-5) << dtype_name(t) << " " << tokens;
    }
  }
}

// Q/K/V of odd row counts in one launch: a warp's rows may lie in two matrices (two or four rows
// a warp: the last case is past the in-register limit).
TEST(CudaQuant, QkvSegmentsMatchSeparateMatmuls) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  std::deque<PreparedWeights> keep;
  for (auto [t, k, r0, r1] : {std::tuple{DType::Q4_0, 512, 97, 33},
                              {DType::Q8_0, 512, 97, 33},
                              {DType::Q4_K, 512, 97, 33},
                              {DType::Q4_1, 1024, 4003, 501}}) {
    std::vector<uint8_t> bytes[3];
    TensorView ws[3];
    const int64_t rows[3] = {r0, r1, r1 - 2};
    for (int i = 0; i < 3; ++i)
      ws[i] = prepared(be, dense_matrix(t, k, rows[i], rng, bytes[i]), keep);
    for (int64_t tokens : {1, 3, 8, 17}) {
      const float* x = to_device(be, randn(static_cast<size_t>(tokens * k), rng));
      float* ys[3];
      const TensorView* wp[3];
      std::vector<float> want[3];
      for (int i = 0; i < 3; ++i) {
        const size_t size = static_cast<size_t>(tokens * rows[i]);
        float* y = be.alloc_floats(size);
        be.matmul(ws[i], x, tokens, y);
        want[i] = to_host(be, y, size);
        ys[i] = be.alloc_floats(size);
        wp[i] = &ws[i];
      }
      be.matmul_shared_input(wp, ys, 3, x, tokens);
      for (int i = 0; i < 3; ++i) {
        EXPECT_LT(rel_err(to_host(be, ys[i], want[i].size()), want[i]), 1e-6)
            << dtype_name(t) << " matrix " << i << " x " << tokens;
      }
    }
  }
}

// The GEMM path in tiles smaller than the matrix: every tile fills its own output columns.
TEST(CudaQuant, GemmInSeveralTilesMatchesOneTile) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  std::deque<PreparedWeights> keep;
  const int64_t k = 256, n = 100, tokens = 24;
  std::vector<uint8_t> bytes;
  const TensorView host = dense_matrix(DType::Q4_K, k, n, rng, bytes);
  const TensorView w = prepared(be, host, keep);
  const auto x = randn(static_cast<size_t>(tokens * k), rng);
  std::vector<uint16_t> xb(x.size());
  for (size_t i = 0; i < x.size(); ++i) xb[i] = fp32_to_bf16(x[i]);
  const auto* dx = reinterpret_cast<const uint16_t*>(bits_to_device(be, xb));
  auto stream = static_cast<cudaStream_t>(be.stream());
  cuda::Gemm gemm(stream);
  cuda::QuantLinear small(stream, gemm, k);
  small.reserve_tiles(7 * k);  // 15 tiles of 7 rows (the last 2)
  float* y = be.alloc_floats(static_cast<size_t>(tokens * n));
  small.gemm(w, dx, tokens, y);
  std::vector<float> xr(x.size());
  for (size_t i = 0; i < x.size(); ++i) xr[i] = bf16_to_fp32(xb[i]);
  const auto ref = reference(host, xr, tokens);
  EXPECT_LT(rel_err(to_host(be, y, ref.size()), ref), 4e-3);  // BF16 weights in the tiles
}

TEST(CudaQuant, EmbeddingRowsAreTheCpuValues) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  std::deque<PreparedWeights> keep;
  for (DType t : kTypes) {
    std::vector<uint8_t> bytes;
    TensorView table = make_matrix(t, 256, 300, rng, bytes);
    table.name = "token_embd.weight";
    const TensorView dev_table = prepared(be, table, keep);
    ASSERT_EQ(dev_table.dtype, t);
    EXPECT_LT(embedding_error(be, cpu, table, dev_table, rng), 1e-6) << dtype_name(t);
  }
}

}  // namespace
}  // namespace shardlm::testing
