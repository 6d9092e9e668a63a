// The CUDA mixture-of-experts FFN (backend/cuda/cuda_moe.h, moe_routing.cu, moe_experts.cu)
// against the CPU: the routing kernel against cpu::moe_route on random logits (softmax, sigmoid,
// the correction bias, group-limited choice by best expert and by best two, renormalisation,
// routed_scaling_factor; the same experts and weights), and the whole op against
// cpu::moe_ffn_reference by normalised error over expert counts 4 to 64, top-k 1 to 8, batches of
// 1 to 64 tokens (several tiles per expert) and of 600 (the grouped path's per-expert GEMMs), with
// and without a shared expert and its gate, and a model width that is not a multiple of 8 (the
// kernels' scalar path). Weights and inputs are BF16-exact, so the router sees the same logits on
// both sides up to summation order. FP8 experts (an FP8 checkpoint's, F8_E4M3_G128) against their
// BF16 copies, bit for bit.
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <tuple>

#include "backend/cpu/moe.h"
#include "backend/cuda/cuda_moe.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/moe_routing.cuh"
#include "core/fp8.h"
#include "cuda_test_util.h"

namespace shardlm::testing {
namespace {

// Host weights (BF16-rounded fp32) for the CPU reference, and their prepared BF16 device views
// for the op.
struct Matrices {
  explicit Matrices(cuda::CudaBackend& be) : be(be) {}
  TensorView make(int64_t cols, int64_t rows, std::mt19937& rng, float scale) {
    return make_values(cols, rows,
                       bf16_rounded(randn(static_cast<size_t>(cols * rows), rng, scale)));
  }
  // A host matrix of these (BF16-exact) values, prepared as make's.
  TensorView make_values(int64_t cols, int64_t rows, std::vector<float> values) {
    auto& v = store.emplace_back(std::move(values));
    TensorView t;
    t.name = fmt::format("w{}", store.size());
    t.ne = {cols, rows, 1, 1};
    t.n_dims = 2;
    t.data = v.data();
    views.emplace(t.data, prepared(be, t, keep));
    return t;
  }
  // The device view (F8_E4M3_G128) of these host rows (core/fp8.h's layout), prepared as an FP8
  // checkpoint's routed expert is.
  TensorView make_fp8(int64_t cols, int64_t rows, std::vector<uint8_t> bytes) {
    TensorView t;
    t.name = fmt::format("fp8_w{}", fp8_store.size());
    t.ne = {cols, rows, 1, 1};
    t.n_dims = 2;
    t.dtype = DType::F8_E4M3_G128;
    t.data = fp8_store.emplace_back(std::move(bytes)).data();
    return prepared(be, t, keep);
  }
  // The device view of a host view made here (an empty view stays empty).
  TensorView on_device(const TensorView& t) const { return t.data ? views.at(t.data) : t; }
  // The device weights of host weights made here.
  MoeFfnWeights on_device(const MoeFfnWeights& w) {
    MoeFfnWeights d = w;
    for (TensorView* t :
         {&d.router, &d.shared_gate, &d.shared_up, &d.shared_down, &d.shared_router}) {
      *t = on_device(*t);
    }
    for (auto* list : {&d.gate, &d.up, &d.down}) {
      for (TensorView& t : *list) t = on_device(t);
    }
    return d;
  }
  cuda::CudaBackend& be;
  std::deque<std::vector<float>> store;
  std::deque<std::vector<uint8_t>> fp8_store;
  std::deque<PreparedWeights> keep;
  std::map<const void*, TensorView> views;
};

struct MoeCase {
  int n_experts, top_k;
  int64_t d, f, shared_f;
  bool shared_gated, norm;
  MoeRouting routing;
  bool bias;
};

std::string describe(const MoeCase& c) {
  return fmt::format("E={} K={} d={} f={} shared={}{} norm={} {} groups {}/{} scale {} bias={}",
                     c.n_experts, c.top_k, c.d, c.f, c.shared_f, c.shared_gated ? " gated" : "",
                     c.norm, c.routing.scoring == MoeScoring::kSigmoid ? "sigmoid" : "softmax",
                     c.routing.topk_groups, c.routing.n_groups, c.routing.scale, c.bias);
}

MoeRouting routing(MoeScoring s, int groups, int topk_groups, MoeGroupScore g, float scale) {
  MoeRouting r;
  r.scoring = s;
  r.n_groups = groups;
  r.topk_groups = topk_groups;
  r.group_score = g;
  r.scale = scale;
  return r;
}

const std::vector<MoeCase>& cases() {
  static const std::vector<MoeCase> all = {
      {8, 2, 64, 32, 0, false, true, MoeRouting{}, false},     // mixtral
      {16, 4, 128, 48, 64, true, false, MoeRouting{}, false},  // qwen2_moe: gated shared expert
      {64, 8, 64, 16, 0, false, true, MoeRouting{}, false},    // qwen3_moe
      {64, 6, 64, 24, 48, false, false,
       routing(MoeScoring::kSoftmax, 8, 3, MoeGroupScore::kMax, 1.f), false},  // deepseek_v2
      {64, 8, 64, 24, 32, false, true,
       routing(MoeScoring::kSigmoid, 8, 4, MoeGroupScore::kTop2Sum, 2.5f), true},  // deepseek_v3
      {4, 1, 60, 20, 20, true, false, MoeRouting{}, true},  // scalar path (d % 8 != 0), K = 1
      // Rows longer than one round of the tile kernels' loads (gate/up: 512 columns a lane
      // round, down: 1,024), the last round partial.
      {8, 2, 1280, 776, 0, false, true, MoeRouting{}, false},
      // Rows not a multiple of the tile kernels' 4 a warp: gate/up (778 = 4 x 194 + 2), down
      // (1,282).
      {8, 2, 1280, 778, 0, false, true, MoeRouting{}, false},
      {8, 2, 1282, 776, 0, false, true, MoeRouting{}, false},
  };
  return all;
}

TEST(CudaMoe, RoutingMatchesCpu) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  // Routing alone also at the kernels' limits: the most experts (its shared memory), top-k and
  // groups.
  std::vector<MoeCase> all = cases();
  all.push_back(
      {cuda::kMoeMaxExperts, cuda::kMoeMaxTopK, 64, 16, 0, false, true,
       routing(MoeScoring::kSigmoid, cuda::kMoeMaxGroups, 8, MoeGroupScore::kTop2Sum, 1.f), true});
  for (const MoeCase& c : all) {
    SCOPED_TRACE(describe(c));
    const int64_t n = 37;
    const int E = c.n_experts, K = c.top_k;
    const auto logits = randn(static_cast<size_t>(n * E), rng, 2.f);
    const auto bias = randn(static_cast<size_t>(E), rng, 0.3f);
    float* d_logits = to_device(be, logits);
    float* d_bias = c.bias ? to_device(be, bias) : nullptr;
    auto* d_ids = reinterpret_cast<int32_t*>(be.alloc_floats(static_cast<size_t>(n * K)));
    float* d_w = be.alloc_floats(static_cast<size_t>(n * K));
    cuda::moe_route(d_logits, n, E, K, c.norm, c.routing, d_bias, d_ids, d_w,
                    static_cast<cudaStream_t>(be.stream()));
    const auto got_w = to_host(be, d_w, static_cast<size_t>(n * K));
    const auto ids_f = to_host(be, reinterpret_cast<float*>(d_ids), static_cast<size_t>(n * K));
    std::vector<int32_t> got_ids(ids_f.size());
    std::memcpy(got_ids.data(), ids_f.data(), ids_f.size() * sizeof(int32_t));
    std::vector<int32_t> ids(static_cast<size_t>(K));
    std::vector<float> w(static_cast<size_t>(K)), sc(static_cast<size_t>(2 * E));
    for (int64_t t = 0; t < n; ++t) {
      cpu::moe_route(logits.data() + t * E, E, K, c.norm, c.routing, c.bias ? bias.data() : nullptr,
                     ids.data(), w.data(), sc.data());
      for (int k = 0; k < K; ++k) {
        ASSERT_EQ(got_ids[static_cast<size_t>(t * K + k)], ids[static_cast<size_t>(k)])
            << "token " << t << " slot " << k;
        EXPECT_NEAR(got_w[static_cast<size_t>(t * K + k)], w[static_cast<size_t>(k)],
                    1e-5 * std::max(1.f, std::abs(w[static_cast<size_t>(k)])));
      }
    }
  }
}

// One case's weights on the host and the device.
struct MoeSetup {
  MoeSetup(cuda::CudaBackend& be, const MoeCase& c, std::mt19937& rng) : m(be) {
    w.router = m.make(c.d, c.n_experts, rng, 0.5f);
    for (int e = 0; e < c.n_experts; ++e) {
      w.gate.push_back(m.make(c.d, c.f, rng, 0.2f));
      w.up.push_back(m.make(c.d, c.f, rng, 0.2f));
      w.down.push_back(m.make(c.f, c.d, rng, 0.2f));
    }
    if (c.shared_f > 0) {
      w.shared_gate = m.make(c.d, c.shared_f, rng, 0.2f);
      w.shared_up = m.make(c.d, c.shared_f, rng, 0.2f);
      w.shared_down = m.make(c.shared_f, c.d, rng, 0.2f);
      if (c.shared_gated) w.shared_router = m.make(c.d, 1, rng, 0.3f);
    }
    bias = randn(static_cast<size_t>(c.n_experts), rng, 0.3f);
    if (c.bias) w.score_bias = bias.data();
    w.routing = c.routing;
    w.top_k = c.top_k;
    w.norm_topk = c.norm;
    wd = m.on_device(w);
    if (c.bias) wd.score_bias = prepared(be, bias, m.keep);
  }
  Matrices m;
  MoeFfnWeights w, wd;  // host, device
  std::vector<float> bias;
};

// The op over n tokens x on the device (may_sync false: no grouped path, as in a captured graph).
std::vector<float> run_moe(cuda::CudaBackend& be, const MoeFfnWeights& wd,
                           const std::vector<float>& x, int64_t n, int64_t* expert_rows = nullptr,
                           bool may_sync = true) {
  cuda::Gemm gemm(static_cast<cudaStream_t>(be.stream()));
  cuda::CudaMoe moe(
      be, static_cast<cudaStream_t>(be.stream()),
      [](const TensorView& t) { return static_cast<const uint16_t*>(t.data); },
      [](const float* p) { return p; }, 64, gemm);
  float* d_out = be.alloc_floats(static_cast<size_t>(n * wd.router.ne[0]));
  moe.run(wd, to_device(be, x), n, d_out, nullptr, may_sync);
  // to_host waits for the backend's stream; expert_rows' copy does not (a non-blocking stream).
  auto out = to_host(be, d_out, static_cast<size_t>(n * wd.router.ne[0]));
  if (expert_rows) *expert_rows = moe.expert_rows();
  return out;
}

// The whole op on n tokens of one case against the double-precision reference.
void check_ffn(const MoeCase& c, int64_t n, std::mt19937& rng) {
  SCOPED_TRACE(fmt::format("{}, {} tokens", describe(c), n));
  cuda::CudaBackend be(small_cuda_options());
  const MoeSetup s(be, c, rng);
  const auto x = bf16_rounded(randn(static_cast<size_t>(n * c.d), rng));
  std::vector<float> ref(x.size());
  cpu::moe_ffn_reference(s.w, x.data(), n, ref.data());
  int64_t rows = 0;
  EXPECT_LT(rel_err(run_moe(be, s.wd, x, n, &rows), ref), 5e-3);
  EXPECT_EQ(rows, n * c.top_k);
}

TEST(CudaMoe, FfnMatchesCpuReference) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  for (const MoeCase& c : cases()) {
    // 1, 2, 3-4, 5-8 tokens: the tile kernels sized for 1, 2, 4 and 8 pairs a tile; 600: the
    // grouped path.
    for (int64_t n : {1, 2, 3, 4, 5, 8, 64, 600}) check_ffn(c, n, rng);
    // The grouped path the other ways too: three GEMMs per expert, and the backend's
    // gate_up_silu and matmul per expert.
    for (const char* form : {"bf16-loop", "backend"}) {
      setenv("SHARDLM_CUDA_MOE_GROUPED", form, 1);
      check_ffn(c, 600, rng);
    }
    unsetenv("SHARDLM_CUDA_MOE_GROUPED");
  }
}

// A token's output from the tile kernels is bit for bit the same alone as first of a batch of 2, 3
// and 8 (kernels sized for 1, 2, 4 and 8 pairs a tile; 8 tokens stay on the tile kernels in every
// case). The routed experts only: the shared expert runs through cuBLAS, whose 1-token and
// n-token kernels need not agree bit for bit.
TEST(CudaMoe, TileKernelsGiveATokenTheSameOutputAloneAndInABatch) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  for (const MoeCase& c : cases()) {
    SCOPED_TRACE(describe(c));
    cuda::CudaBackend be(small_cuda_options());
    MoeCase routed = c;
    routed.shared_f = 0;
    routed.shared_gated = false;
    const MoeSetup s(be, routed, rng);
    const auto x = bf16_rounded(randn(static_cast<size_t>(8 * c.d), rng));
    const auto alone = run_moe(be, s.wd, std::vector<float>(x.begin(), x.begin() + c.d), 1);
    for (int64_t n : {2, 3, 8}) {
      const auto batch = run_moe(be, s.wd, std::vector<float>(x.begin(), x.begin() + n * c.d), n);
      for (int64_t i = 0; i < c.d; ++i)
        ASSERT_EQ(alone[i], batch[i]) << n << " tokens, column " << i;
    }
  }
}

// An F8_E4M3_G128 matrix (core/fp8.h) of random codes with a random scale per row and 128
// columns: its exact values e4m3(code) x scale, and those of its BF16 copy (rounded to BF16, as
// the loader dequantises an FP8 checkpoint's matrix). With nan_at_0, code 0 of row 0 is a NaN
// code.
struct Fp8Rows {
  std::vector<uint8_t> bytes;
  std::vector<float> exact, copy;
};
Fp8Rows fp8_rows(int64_t cols, int64_t rows, std::mt19937& rng, bool nan_at_0) {
  const size_t stride = row_bytes(DType::F8_E4M3_G128, cols);
  Fp8Rows m{std::vector<uint8_t>(stride * static_cast<size_t>(rows)),
            std::vector<float>(static_cast<size_t>(cols * rows)),
            std::vector<float>(static_cast<size_t>(cols * rows))};
  std::uniform_int_distribution<int> code(0, 255);
  std::uniform_real_distribution<float> exponent(-12.f, -7.f);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = m.bytes.data() + static_cast<size_t>(r) * stride;
    auto* scales = reinterpret_cast<float*>(row + cols);
    for (int64_t g = 0; g < cols / kFp8GroupCols; ++g) scales[g] = std::exp2(exponent(rng));
    for (int64_t c = 0; c < cols; ++c) {
      int b = code(rng);
      while ((b & 0x7f) == 0x7f) b = code(rng);
      if (nan_at_0 && r == 0 && c == 0) b = 0x7f;
      row[c] = static_cast<uint8_t>(b);
      const auto i = static_cast<size_t>(r * cols + c);
      m.exact[i] = e4m3_to_float(row[c]) * scales[c / kFp8GroupCols];
      m.copy[i] = bf16_to_fp32(fp32_to_bf16(m.exact[i]));
    }
  }
  return m;
}

// Equal bit for bit, or both NaN.
bool same_value(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(a)) == 0;
}

// NaN in the same elements, and the normalised error over the others (0 if none).
double rel_err_same_nans(const std::vector<float>& got, const std::vector<float>& want) {
  std::vector<float> g, w;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(std::isnan(got[i]), std::isnan(want[i])) << "element " << i;
    if (std::isnan(got[i]) || std::isnan(want[i])) continue;
    g.push_back(got[i]);
    w.push_back(want[i]);
  }
  return g.empty() ? 0.0 : rel_err(g, w);
}

// An FP8 checkpoint's routed experts held in FP8 on the GPU (F8_E4M3_G128, as prepare_weights
// keeps them), with gate/up and down both FP8 and with down left BF16 (a tensor-parallel slice
// that does not fit 128 columns). With SHARDLM_CUDA_FP8_EXPERT_MMA=0: on the BF16 tensor-core
// tiles (64 and 600 tokens) bit for bit the outputs of their BF16 copies; on the CUDA-core tile
// kernels (1 to 8 tokens, every kCount), which multiply the codes' exact values and scale each 16
// products' sum, within 1e-3 of the double reference over the exact values (the BF16 copies' own
// rounding costs about 3e-3). On the E4M3 tensor-core tiles (the default, every batch), within the
// error of their FP8 inputs. At 1 to 8 tokens, a token's output the same alone and in a batch on
// both. A NaN code (in row
// 0 of every expert's gate, so that whichever experts the routing picks every output is NaN) gives
// NaN as the copy does.
TEST(CudaMoe, Fp8ExpertsGiveTheOutputsOfTheirBf16Copies) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const std::vector<MoeCase> fp8_cases = {
      {8, 2, 256, 384, 0, false, true, MoeRouting{}, false},
      {64, 8, 512, 256, 128, false, true,
       routing(MoeScoring::kSigmoid, 8, 4, MoeGroupScore::kTop2Sum, 2.5f), true},
  };
  for (const MoeCase& c : fp8_cases) {
    for (const bool with_nan : {false, true}) {
      SCOPED_TRACE(fmt::format("{}{}", describe(c), with_nan ? ", a NaN code" : ""));
      cuda::CudaBackend be(small_cuda_options());
      MoeSetup s(be, c, rng);  // s.w: the reference's weights, the experts' exact values
      MoeFfnWeights bf16 = s.wd, fp8 = s.wd;
      for (size_t e = 0; e < s.w.gate.size(); ++e) {
        for (auto [host, copy, held, cols, rows] :
             {std::tuple{&s.w.gate[e], &bf16.gate[e], &fp8.gate[e], c.d, c.f},
              std::tuple{&s.w.up[e], &bf16.up[e], &fp8.up[e], c.d, c.f},
              std::tuple{&s.w.down[e], &bf16.down[e], &fp8.down[e], c.f, c.d}}) {
          Fp8Rows m = fp8_rows(cols, rows, rng, with_nan && host == &s.w.gate[e]);
          *host = s.m.make_values(cols, rows, std::move(m.exact));
          *copy = s.m.on_device(s.m.make_values(cols, rows, std::move(m.copy)));
          *held = s.m.make_fp8(cols, rows, std::move(m.bytes));
          ASSERT_EQ(held->dtype, DType::F8_E4M3_G128);
        }
      }
      MoeFfnWeights mixed = fp8;
      mixed.down = bf16.down;
      const auto x8 = bf16_rounded(randn(static_cast<size_t>(8 * c.d), rng));
      std::vector<float> alone[2];  // [e4m3]
      for (const bool e4m3 : {false, true}) {
        setenv("SHARDLM_CUDA_FP8_EXPERT_MMA", e4m3 ? "1" : "0", 1);
        alone[e4m3] = run_moe(be, fp8, std::vector<float>(x8.begin(), x8.begin() + c.d), 1);
      }
      unsetenv("SHARDLM_CUDA_FP8_EXPERT_MMA");
      for (int64_t n : {1, 2, 3, 8, 64, 600}) {
        const auto x = n <= 8 ? std::vector<float>(x8.begin(), x8.begin() + n * c.d)
                              : bf16_rounded(randn(static_cast<size_t>(n * c.d), rng));
        const auto want = run_moe(be, bf16, x, n, nullptr, false);
        const bool tiles = n <= 8;  // the tile kernels in both cases (too few pairs an expert)
        std::vector<float> ref(want.size());
        cpu::moe_ffn_reference(s.w, x.data(), n, ref.data());
        int64_t nans = 0;
        for (const MoeFfnWeights* w : {&fp8, &mixed}) {
          SCOPED_TRACE(fmt::format("{} tokens, {}", n, w == &fp8 ? "all FP8" : "down BF16"));
          for (const bool e4m3 : {false, true}) {
            SCOPED_TRACE(e4m3 ? "E4M3 tensor-core tiles" : "the tiles before them");
            setenv("SHARDLM_CUDA_FP8_EXPERT_MMA", e4m3 ? "1" : "0", 1);
            const auto got = run_moe(be, *w, x, n, nullptr, false);
            unsetenv("SHARDLM_CUDA_FP8_EXPERT_MMA");
            for (size_t i = 0; i < want.size(); ++i) nans += std::isnan(got[i]);
            if (tiles) {
              // The CUDA-core tiles: the exact values' sums (down BF16: its copy's rounding). The
              // E4M3 tiles: per-group FP8 inputs cost a few percent (test_cuda_moe_e4m3.cpp
              // checks their sums exactly).
              EXPECT_LT(rel_err_same_nans(got, ref), e4m3 ? 8e-2 : w == &fp8 ? 1e-3 : 6e-3);
              if (w != &fp8 || c.shared_f > 0) continue;  // cuBLAS: not batch-invariant
              for (int64_t i = 0; i < c.d; ++i) {
                ASSERT_TRUE(
                    same_value(alone[e4m3][static_cast<size_t>(i)], got[static_cast<size_t>(i)]))
                    << "token 0 alone and in the batch, column " << i;
              }
              continue;
            }
            if (e4m3) {  // 64 and 600 tokens: tiles of 16 pairs (two blocks of mma columns)
              EXPECT_LT(rel_err_same_nans(got, ref), 8e-2);
              if (w != &fp8 || c.shared_f > 0) continue;  // cuBLAS: not batch-invariant
              // (The E4M3 tiles are the default.)
              const auto first = run_moe(be, *w, std::vector<float>(x.begin(), x.begin() + c.d), 1);
              for (int64_t i = 0; i < c.d; ++i) {
                ASSERT_TRUE(same_value(first[static_cast<size_t>(i)], got[static_cast<size_t>(i)]))
                    << "token 0 alone and in the batch of " << n << ", column " << i;
              }
              continue;
            }
            for (size_t i = 0; i < want.size(); ++i) {
              ASSERT_TRUE(same_value(got[i], want[i]))
                  << "element " << i << ": " << got[i] << " vs " << want[i];
            }
          }
        }
        if (with_nan && n == 600) EXPECT_GT(nans, 0) << "the NaN code reached no output";
      }
    }
  }
}

}  // namespace
}  // namespace shardlm::testing

namespace shardlm::testing {
namespace {

// The router's logits (fp32 activations against BF16 rows) against an fp64 dot product, at widths
// of the tiled kernel (d % 256 == 0: tiles of 16 to 1 token, one or four experts a warp) and of
// the per-pair one, expert counts that are and are not a multiple of four, and a token's logits
// bit for bit the same alone and inside batches of 6, 12, 300 and 600 (the prefill form).
TEST(CudaMoe, RouterLogitsMatchFp64AndDoNotDependOnTheBatch) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const auto stream = static_cast<cudaStream_t>(be.stream());
  for (const auto [d, E] : {std::pair<int64_t, int>{256, 64},
                            {2048, 64},
                            {2048, 61},
                            {4096, 64},
                            {7168, 61},
                            {12288, 64},
                            {64, 64}}) {
    SCOPED_TRACE(fmt::format("d {}, {} experts", d, E));
    const int64_t n = 300;
    std::vector<uint16_t> wb(static_cast<size_t>(E * d));
    for (uint16_t& b : wb) b = fp32_to_bf16(std::normal_distribution<float>(0.f, 1.f)(rng));
    const auto x = randn(static_cast<size_t>(n * d), rng);
    const auto* dw = reinterpret_cast<const uint16_t*>(bits_to_device(be, wb));
    const float* dx = to_device(be, x);
    float* all = be.alloc_floats(static_cast<size_t>(n * E));
    float* one = be.alloc_floats(static_cast<size_t>(E));
    cuda::moe_router_logits(dw, dx, n, E, d, all, stream);
    const auto got = to_host(be, all, static_cast<size_t>(n * E));
    std::vector<double> ref(got.size());
    for (int64_t t = 0; t < n; ++t)
      for (int e = 0; e < E; ++e) {
        double acc = 0;
        for (int64_t i = 0; i < d; ++i)
          acc += double(bf16_to_fp32(wb[static_cast<size_t>(e * d + i)])) * x[t * d + i];
        ref[static_cast<size_t>(t * E + e)] = acc;
      }
    EXPECT_LT(rel_err(got, ref), 1e-5);
    for (int64_t t : {int64_t{0}, int64_t{13}, n - 1}) {
      cuda::moe_router_logits(dw, dx + t * d, 1, E, d, one, stream);
      const auto alone = to_host(be, one, static_cast<size_t>(E));
      for (int e = 0; e < E; ++e)
        ASSERT_EQ(alone[static_cast<size_t>(e)], got[static_cast<size_t>(t * E + e)])
            << "token " << t << " expert " << e;
    }
    // Other batches of decode size, and one of prefill size (four experts a warp, tiles of 16
    // tokens) whose first 300 tokens are the batch above.
    for (int64_t m : {6, 12}) {
      cuda::moe_router_logits(dw, dx + 5 * d, m, E, d, all, stream);
      const auto part = to_host(be, all, static_cast<size_t>(m * E));
      for (size_t i = 0; i < part.size(); ++i)
        ASSERT_EQ(part[i], got[static_cast<size_t>(5 * E) + i]) << "batch of " << m << ", " << i;
    }
    const int64_t big = 600;
    auto xb = x;
    xb.resize(static_cast<size_t>(big * d), 0.5f);
    float* logits_big = be.alloc_floats(static_cast<size_t>(big * E));
    cuda::moe_router_logits(dw, to_device(be, xb), big, E, d, logits_big, stream);
    const auto part = to_host(be, logits_big, static_cast<size_t>(n * E));
    for (size_t i = 0; i < part.size(); ++i)
      ASSERT_EQ(part[i], got[i]) << "the batch of " << big << ", " << i;
    be.synchronize();
  }
}

}  // namespace
}  // namespace shardlm::testing
