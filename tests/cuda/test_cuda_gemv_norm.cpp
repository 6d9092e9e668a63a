// At one token the norm runs inside the GEMV (backend/cuda/gemv_staged.cuh: x normed into shared
// memory exactly as the norm kernel norms it), and the MLP's down projection adds its output to
// the residual stream in its epilogue. Both against the norm kernel ahead of the GEMV
// (SHARDLM_CUDA_GEMV_NORM=0) on the same weights, and the token alone against the same token in a
// batch of three, bit for bit, for BF16 and FP8 weights (FP8 with the tensor-core GEMV at every
// batch size; by default within rounding), at Llama-3.1-8B's shapes (rows many times the GPU's
// warps, so each warp takes several) and at odd ones; and against the CPU's ops at the odd shape.
#include <algorithm>
#include <cstdlib>
#include <deque>
#include <string>

#include "cuda_test_util.h"

namespace shardlm::testing {
namespace {

struct Shape {
  int64_t d, q, k, f;  // model width, Q and K rows, FFN width
};

// same_bits: the token alone and in a batch give the same bits (FP8: only with the tensor-core
// GEMV at every batch size; by default one token takes the CUDA-core kernel, which multiplies x in
// fp32, and a batch the tensor cores, x rounded to BF16).
void check(bool fp8, const Shape& s, bool with_cpu, bool same_bits, std::mt19937& rng) {
  cuda::CudaBackendOptions o = small_cuda_options();
  o.max_matmul_k = std::max(s.d, s.f);
  o.fp8_weights = fp8;
  cuda::CudaBackend inside(o);
  const auto apart_be = cuda_backend_with(o, "SHARDLM_CUDA_GEMV_NORM", "0");
  cuda::CudaBackend& apart = *apart_be;
  CpuBackendOptions co = small_cpu_options();
  co.max_matmul_k = std::max(s.d, s.f);
  CpuBackend cpu(co);
  std::deque<std::vector<uint8_t>> bytes;
  const auto ws = norm_ops_matrices(s.d, s.q, s.k, s.f, rng, bytes);
  const auto norm_w = randn(static_cast<size_t>(s.d), rng, 0.2f, 1.f);
  for (const NormOpsCase c : {NormOpsCase{1, false}, {1, false, true}, {1, true, true}}) {
    const auto x = randn(static_cast<size_t>(s.d), rng);
    const auto res = randn(x.size(), rng);
    const auto a = run_norm_ops(inside, ws, norm_w, x, res, c, s.d, s.f);
    const auto b = run_norm_ops(apart, ws, norm_w, x, res, c, s.d, s.f);
    const std::string what =
        std::string(fp8 ? "FP8" : "BF16") + " d " + std::to_string(s.d) + ", " + describe(c);
    // The staged rows are the norm kernel's, summed in the GEMV's order: the same bits. Batch-1
    // gate/up without the norm splits k over two warps, so the BF16 MLP differs by rounding.
    EXPECT_EQ(a.x, b.x) << what;
    EXPECT_EQ(a.q, b.q) << "q " << what;
    EXPECT_EQ(a.k, b.k) << "k " << what;
    if (fp8 || c.residual) {
      EXPECT_EQ(a.mlp, b.mlp) << "mlp " << what;
    } else {
      EXPECT_LT(rel_err(a.mlp, b.mlp), 1e-5) << "mlp " << what;
    }
    // The token alone and first in a batch of three (the GEMV for several tokens, after the norm
    // kernel): the same bits, so a seeded sample does not depend on the batch.
    auto batch_x = x, batch_res = res;
    for (int i = 0; i < 2; ++i) {
      const auto more = randn(x.size(), rng);
      batch_x.insert(batch_x.end(), more.begin(), more.end());
      batch_res.insert(batch_res.end(), more.begin(), more.end());
    }
    const auto in_batch = run_norm_ops(inside, ws, norm_w, batch_x, batch_res,
                                       NormOpsCase{3, c.residual, c.add_to_x}, s.d, s.f);
    const auto first = [](const std::vector<float>& v, size_t n) {
      return std::vector<float>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
    };
    if (same_bits) {
      EXPECT_EQ(first(in_batch.q, a.q.size()), a.q) << "q in a batch, " << what;
      if (!c.residual) {  // (batch-1 gate/up without the norm inside splits k over two warps)
        EXPECT_EQ(first(in_batch.mlp, a.mlp.size()), a.mlp) << "mlp in a batch, " << what;
      }
    } else {
      EXPECT_LT(rel_err(first(in_batch.q, a.q.size()), a.q), 1e-2) << "q in a batch, " << what;
      EXPECT_LT(rel_err(first(in_batch.mlp, a.mlp.size()), a.mlp), 1e-2)
          << "mlp in a batch, " << what;
    }
    if (!with_cpu) continue;
    const auto ref = run_norm_ops(cpu, ws, norm_w, x, res, c, s.d, s.f);
    const double tol = fp8 ? 0.1 : 2e-2;  // FP8 weights; BF16 against the CPU's BF16 rounding
    EXPECT_LT(rel_err(a.q, ref.q), tol) << "q " << what << " vs CPU";
    EXPECT_LT(rel_err(a.k, ref.k), tol) << "k " << what << " vs CPU";
    EXPECT_LT(rel_err(a.mlp, ref.mlp), tol) << "mlp " << what << " vs CPU";
  }
}

TEST(CudaGemvNorm, MatchesTheNormKernelAhead) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  // FP8: the default, then the tensor-core GEMV at every batch size.
  for (const char* fp8_mma : {"", "1", "all"}) {
    const bool fp8 = *fp8_mma != 0;
    if (fp8) setenv("SHARDLM_CUDA_FP8_GEMV_MMA", fp8_mma, 1);
    SCOPED_TRACE(std::string("SHARDLM_CUDA_FP8_GEMV_MMA=") + fp8_mma);
    const bool same_bits = !fp8 || std::string(fp8_mma) == "all";
    check(fp8, Shape{4096, 4096, 1024, 14336}, false, same_bits, rng);  // Llama-3.1-8B
    check(fp8, Shape{1040, 48, 16, 208}, true, same_bits, rng);         // a partial pass, few rows
  }
  unsetenv("SHARDLM_CUDA_FP8_GEMV_MMA");
}

}  // namespace
}  // namespace shardlm::testing
