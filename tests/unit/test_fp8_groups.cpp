// FP8 checkpoint matrices on the CPU in the F8_E4M3_G128 layout (core/fp8.h: each row's codes,
// then a scale per 128 columns): fp8_groups_of keeps the codes and the checkpoint's scales for
// per-tensor, per-channel and block scales (and refuses blocks narrower than a group and NaN
// codes); the matmul on it, on every ISA this CPU has, sums code x scale x activation to fp32
// rounding, and gives each token the same outputs in any batch and on one thread or two; a CPU
// rank prepares a checkpoint matrix holding NaN codes as its BF16 copy. And the FP8 rows a CUDA
// GPU takes (fp8_rows_of), which refuse NaN codes too.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/matmul.h"
#include "core/fp16.h"
#include "core/fp8.h"
#include "core/thread_pool.h"
#include "model/fp8_at_bind.h"
#include "model/model.h"
#include "model/weight_set_of.h"
#include "test_support.h"
#include "tiny_fp8_model.h"

namespace shardlm {
namespace {

struct Fp8Matrix {
  std::vector<uint8_t> codes;
  Fp8Scales scales;
  TensorView view;
};

// rows x cols random E4M3 codes (with_nan: E4M3's NaN codes too) with scales in blocks of
// block_rows x block_cols.
Fp8Matrix make_fp8(int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols,
                   std::mt19937& rng, bool with_nan = false) {
  Fp8Matrix m;
  m.codes.resize(static_cast<size_t>(rows * cols));
  std::uniform_int_distribution<int> code(0, 255);
  for (uint8_t& c : m.codes) {
    c = static_cast<uint8_t>(code(rng));
    if ((c & 0x7f) == 0x7f && !with_nan) c = 0x31;
  }
  m.scales.block_rows = block_rows;
  m.scales.block_cols = block_cols;
  m.scales.col_blocks = (cols + block_cols - 1) / block_cols;
  const int64_t n = (rows + block_rows - 1) / block_rows * m.scales.col_blocks;
  std::uniform_real_distribution<float> scale(1e-4f, 3e-3f);
  for (int64_t i = 0; i < n; ++i) m.scales.v.push_back(scale(rng));
  m.view.name = "w";
  m.view.dtype = DType::F8_E4M3;
  m.view.ne = {cols, rows, 1, 1};
  m.view.n_dims = 2;
  m.view.data = m.codes.data();
  m.view.fp8_scales = &m.scales;
  return m;
}

struct Groups {
  std::vector<uint8_t> bytes;
  TensorView view;
};

Groups groups_of(const TensorView& w) {
  Groups g;
  g.bytes.resize(row_bytes(DType::F8_E4M3_G128, w.ne[0]) * static_cast<size_t>(w.rows()));
  fp8_groups_of(w, g.bytes.data());
  g.view = w;
  g.view.dtype = DType::F8_E4M3_G128;
  g.view.data = g.bytes.data();
  g.view.fp8_scales = nullptr;
  return g;
}

struct Layout {
  const char* what;
  int64_t block_rows, block_cols;  // 0: the whole matrix's rows or columns
};

const std::vector<Layout> kLayouts = {{"per tensor", 0, 0},
                                      {"per channel", 1, 0},
                                      {"128 x 128 blocks", 128, 128},
                                      {"64 x 256 blocks", 64, 256}};

TEST(Fp8Groups, RowsHoldTheCodesAndTheirGroupsScales) {
  std::mt19937 rng(7);
  for (const Layout& l : kLayouts) {
    for (const auto& [rows, cols] :
         std::vector<std::pair<int64_t, int64_t>>{{5, 64}, {37, 300}, {130, 1028}, {3, 4}}) {
      SCOPED_TRACE(std::string(l.what) + " " + std::to_string(rows) + " x " + std::to_string(cols));
      Fp8Matrix m = make_fp8(rows, cols, l.block_rows ? l.block_rows : rows,
                             l.block_cols ? l.block_cols : cols, rng);
      ASSERT_TRUE(fp8_groups_fit(m.view));
      const Groups g = groups_of(m.view);
      std::vector<float> got(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = g.view.row(r);
        ASSERT_EQ(std::vector<uint8_t>(row, row + cols),
                  std::vector<uint8_t>(m.view.row(r), m.view.row(r) + cols));
        fp8_group_row_to_float(row, cols, got.data());
        for (int64_t c = 0; c < cols; ++c) {
          ASSERT_EQ(got[static_cast<size_t>(c)],
                    e4m3_to_float(m.view.row(r)[c]) * m.scales.at(r, c))
              << r << " " << c;
        }
      }
    }
  }
  // Blocks narrower than a group, and rows not a multiple of 4, do not take the layout; a matrix
  // with E4M3 NaN codes (which the kernels do not decode) is refused, for its BF16 copy.
  Fp8Matrix narrow = make_fp8(8, 256, 1, 64, rng);
  EXPECT_FALSE(fp8_groups_fit(narrow.view));
  Fp8Matrix odd = make_fp8(8, 66, 8, 66, rng);
  EXPECT_FALSE(fp8_groups_fit(odd.view));
  for (uint8_t nan : {0x7f, 0xff}) {
    Fp8Matrix m = make_fp8(8, 256, 8, 256, rng);
    m.codes[1000] = nan;
    std::vector<uint8_t> bytes(row_bytes(DType::F8_E4M3_G128, 256) * 8);
    EXPECT_FALSE(fp8_groups_of(m.view, bytes.data()));
  }
}

// The FP8 rows a CUDA GPU takes (a scale per row): the codes as they are, then each row's scale;
// a matrix holding an E4M3 NaN code is refused, for its BF16 copy (the tensor-core GEMV widens
// codes by integer operations, which would make a NaN a finite value).
TEST(Fp8Groups, RowsLayoutHoldsCodesAndRowScalesAndRefusesNanCodes) {
  std::mt19937 rng(7);
  Fp8Matrix m = make_fp8(6, 96, 1, 96, rng);
  ASSERT_TRUE(fp8_scaled_by_rows(m.view));
  std::vector<uint8_t> bytes(fp8_matrix_bytes(m.view.numel(), m.view.rows()));
  ASSERT_TRUE(fp8_rows_of(m.view, bytes.data()));
  EXPECT_EQ(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 6 * 96), m.codes);
  const auto* scales = reinterpret_cast<const float*>(bytes.data() + fp8_scales_offset(6 * 96));
  for (int64_t r = 0; r < 6; ++r) EXPECT_EQ(scales[r], m.scales.at(r, 0)) << r;
  for (uint8_t nan : {0x7f, 0xff}) {
    Fp8Matrix n = make_fp8(6, 96, 1, 96, rng);
    n.codes[300] = nan;
    EXPECT_FALSE(fp8_rows_of(n.view, bytes.data())) << int{nan};
  }
}

// Every ISA's matmul against a double-precision sum of code x scale x activation (within fp32
// rounding of the sum), and each token's outputs the same bit for bit whatever the batch around
// it and the threads.
TEST(Fp8Groups, MatmulSumsCodesTimesScalesBatchInvariant) {
  std::mt19937 rng(11);
  cpu::MatmulWorkspace ws;
  ThreadPool one(1), two(2);
  const int64_t most = 70;
  for (const Layout& l : kLayouts) {
    for (const auto& [n, k] :
         std::vector<std::pair<int64_t, int64_t>>{{37, 300}, {300, 256}, {70, 1028}, {9, 4}}) {
      Fp8Matrix m =
          make_fp8(n, k, l.block_rows ? l.block_rows : n, l.block_cols ? l.block_cols : k, rng);
      const Groups g = groups_of(m.view);
      std::normal_distribution<float> act(0.f, 1.f);
      std::vector<float> x(static_cast<size_t>(most * k));
      for (float& v : x) v = act(rng);
      for (cpu::CpuIsa isa : {cpu::CpuIsa::Scalar, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512}) {
        if (!cpu::cpu_isa_supported(isa)) continue;
        std::vector<float> batch(static_cast<size_t>(most * n));
        cpu::matmul(g.view, x.data(), most, batch.data(), two, ws, isa);
        for (int64_t t = 0; t < most; t += 13) {
          for (int64_t r = 0; r < n; ++r) {
            double want = 0, size = 0;
            for (int64_t c = 0; c < k; ++c) {
              const double p = double(e4m3_to_float(m.view.row(r)[c])) * m.scales.at(r, c) *
                               x[static_cast<size_t>(t * k + c)];
              want += p;
              size += std::abs(p);
            }
            ASSERT_NEAR(batch[static_cast<size_t>(t * n + r)], want, 2e-6 * size + 1e-30)
                << l.what << " n " << n << " k " << k << " " << cpu::cpu_isa_name(isa) << " token "
                << t << " row " << r;
          }
        }
        for (int64_t tokens : {1, 3, 17}) {
          for (ThreadPool* pool : {&one, &two}) {
            SCOPED_TRACE(std::string(l.what) + " n " + std::to_string(n) + " k " +
                         std::to_string(k) + " tokens " + std::to_string(tokens) + " " +
                         cpu::cpu_isa_name(isa) + " threads " + std::to_string(pool->size()));
            std::vector<float> got(static_cast<size_t>(tokens * n));
            cpu::matmul(g.view, x.data(), tokens, got.data(), *pool, ws, isa);
            ASSERT_EQ(got, std::vector<float>(batch.begin(), batch.begin() + tokens * n));
          }
        }
      }
    }
  }
}

// A checkpoint matrix holding an E4M3 NaN code is prepared as its BF16 copy (the NaN stays a NaN
// there), the others in FP8, when a CPU rank prepares its weights.
TEST(Fp8Groups, AMatrixWithNanCodesIsPreparedAsBf16) {
  testing::TempDir dir("fp8-groups-nan");
  testing::write_tiny_fp8_hf_model(dir.path("m"), testing::TinyModelSpec{},
                                   testing::Fp8Format::kFbgemm);
  auto model = load_model(dir.path("m"));
  ModelWeights w = model->weights;
  TensorView& wq = w.layers[0].wq;
  ASSERT_EQ(wq.dtype, DType::F8_E4M3);
  const auto* codes = static_cast<const uint8_t*>(wq.data);
  std::vector<uint8_t> with_nan(codes, codes + wq.numel());
  with_nan[5] = 0xff;
  wq.data = with_nan.data();
  CpuBackendOptions o;
  o.threads = 1;
  CpuBackend cpu(o);
  const BackendWeights got = prepare_model_weights(cpu, model->config, w);
  const TensorView& q = got.weights.layers[0].wq;
  ASSERT_EQ(q.dtype, DType::BF16);
  const auto* bits = static_cast<const uint16_t*>(q.data);
  EXPECT_TRUE(std::isnan(bf16_to_fp32(bits[5])));
  EXPECT_EQ(bits[6], fp32_to_bf16(e4m3_to_float(codes[6]) * wq.fp8_scales->at(0, 6)));
  EXPECT_EQ(got.weights.layers[0].wk.dtype, DType::F8_E4M3_G128);
  EXPECT_EQ(got.weights.layers[1].wq.dtype, DType::F8_E4M3_G128);
}

}  // namespace
}  // namespace shardlm
