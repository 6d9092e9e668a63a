// At one token the Q/K/V GEMV rotates Q and K and stores K and V into the cache in its epilogue
// (CudaBackend::norm_qkv_rope, gemv_staged.cuh). Against the same backend's norm_matmul followed
// by rope_store_kv, the path of every step of more than one token (itself against the CPU in
// CudaOps.RopeStoreKvMatchesCpu): q, k, v and the cache's rows bit for bit, for BF16 and FP8
// weights (FP8 also on the tensor-core GEMV, SHARDLM_CUDA_FP8_GEMV_MMA=all), BF16 and FP8 caches
// and both rotary pairings, at Llama-3.1-8B's Q/K/V shape and at an odd one; and the cases the
// fused op must leave to the caller.
#include <cstdlib>
#include <deque>
#include <string>

#include "cuda_test_util.h"
#include "model/rope_config.h"

namespace shardlm::testing {
namespace {

struct Shape {
  int64_t d;
  int n_heads, n_kv_heads, head_dim;
};

struct Outputs {
  std::vector<float> q, k, v, cache_k, cache_v;
};

// Random Q, K and V matrices, named as GGUF names them (so --quantization fp8 quantises them).
std::vector<TensorView> qkv_matrices(const Shape& s, std::mt19937& rng,
                                     std::deque<std::vector<uint8_t>>& bytes) {
  const char* names[] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"};
  const int64_t rows[] = {int64_t{s.n_heads} * s.head_dim, int64_t{s.n_kv_heads} * s.head_dim,
                          int64_t{s.n_kv_heads} * s.head_dim};
  std::vector<TensorView> ws;
  for (int i = 0; i < 3; ++i) {
    ws.push_back(make_matrix(DType::BF16, s.d, rows[i], rng, bytes.emplace_back()));
    ws.back().name = names[i];
  }
  return ws;
}

struct Inputs {
  std::vector<TensorView> ws;
  std::vector<float> x, norm_w;
  RopeParams rope;
  int32_t position, slot;
};

constexpr int kSlots = 48;

// Q/K/V of one token at in.position into cache slot in.slot: fused (norm_qkv_rope, which must take
// it) or as norm_matmul then rope_store_kv.
Outputs run(cuda::CudaBackend& be, bool fp8_kv, const Shape& s, const Inputs& in, bool fused) {
  std::deque<PreparedWeights> keep;
  std::vector<TensorView> ws;
  for (const TensorView& w : in.ws) ws.push_back(prepared(be, w, keep));
  const int64_t kv_dim = int64_t{s.n_kv_heads} * s.head_dim;
  const size_t pool = static_cast<size_t>(kSlots * kv_dim);
  const KvLayerView kv{be.alloc_kv(pool), be.alloc_kv(pool), fp8_kv ? DType::F8_E4M3 : DType::BF16,
                       MemSpace::kDevice};
  float* x = to_device(be, in.x);
  float* nw = to_device(be, in.norm_w);
  float* xn = be.alloc_floats(static_cast<size_t>(s.d));
  float* q = be.alloc_floats(static_cast<size_t>(ws[0].rows()));
  float* k = be.alloc_floats(static_cast<size_t>(kv_dim));
  float* v = be.alloc_floats(static_cast<size_t>(kv_dim));
  StepInput step;
  step.positions = {in.position};
  step.slots = {in.slot};
  const StepArrays st = begin_step(be, step);
  const Backend::NormIn norm{x, nullptr, nw, 1, s.d, 1e-5f, xn};
  const TensorView* qkv[] = {&ws[0], &ws[1], &ws[2]};
  float* ys[] = {q, k, v};
  if (fused) {
    const Backend::QkvRope r{st.positions, st.slots, s.n_heads, s.n_kv_heads, in.rope, kv};
    EXPECT_TRUE(be.norm_qkv_rope(norm, qkv, ys, r));
  } else {
    be.norm_matmul(norm, qkv, ys, 3);
    be.rope_store_kv(q, k, v, st.positions, st.slots, 1, s.n_heads, s.n_kv_heads, in.rope, kv);
  }
  return {to_host(be, q, static_cast<size_t>(ws[0].rows())),
          to_host(be, k, static_cast<size_t>(kv_dim)), to_host(be, v, static_cast<size_t>(kv_dim)),
          be.kv_to_host(kv.k, pool), be.kv_to_host(kv.v, pool)};
}

TEST(CudaQkvRope, MatchesTheGemvThenRopeStore) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  // Llama-3.1-8B's Q/K/V; an odd width with head_dim 64 and a single KV head.
  for (const Shape& s : {Shape{4096, 32, 8, 128}, Shape{1040, 6, 1, 64}}) {
    std::deque<std::vector<uint8_t>> bytes;
    Inputs in;
    in.ws = qkv_matrices(s, rng, bytes);
    in.x = randn(static_cast<size_t>(s.d), rng);
    in.norm_w = randn(static_cast<size_t>(s.d), rng, 0.2f, 1.f);
    in.position = static_cast<int32_t>(rng() % 100000);
    in.slot = static_cast<int32_t>(rng() % kSlots);
    // FP8 weights on the CUDA-core kernel (the default at one token) and on the tensor cores.
    for (const char* weights : {"bf16", "fp8", "fp8-mma"}) {
      const bool fp8 = std::string(weights) != "bf16";
      if (std::string(weights) == "fp8-mma") setenv("SHARDLM_CUDA_FP8_GEMV_MMA", "all", 1);
      for (const bool fp8_kv : {false, true}) {
        for (const RopeStyle style : {RopeStyle::kNeox, RopeStyle::kNormal}) {
          ModelConfig c;
          c.head_dim = s.head_dim;
          c.rope_theta = 500000.f;
          c.rope_style = style;
          in.rope = rope_params(c);
          cuda::CudaBackendOptions o = small_cuda_options();
          o.max_matmul_k = s.d;
          o.fp8_weights = fp8;
          o.fp8_kv = fp8_kv;
          cuda::CudaBackend be(o);
          const std::string what = std::string(weights) + " weights, " + (fp8_kv ? "FP8" : "BF16") +
                                   " cache, d " + std::to_string(s.d) +
                                   (style == RopeStyle::kNeox ? ", neox" : ", interleaved");
          const Outputs fused = run(be, fp8_kv, s, in, true);
          const Outputs apart = run(be, fp8_kv, s, in, false);
          EXPECT_EQ(fused.q, apart.q) << "q, " << what;
          EXPECT_EQ(fused.k, apart.k) << "k, " << what;
          EXPECT_EQ(fused.v, apart.v) << "v, " << what;
          EXPECT_EQ(fused.cache_k, apart.cache_k) << "cached k, " << what;
          EXPECT_EQ(fused.cache_v, apart.cache_v) << "cached v, " << what;
          // The slot was written: the rotated keys, not the zeroed pool.
          const size_t at = static_cast<size_t>(in.slot) * apart.k.size();
          EXPECT_NE(fused.cache_k[at], 0.f) << what;
        }
      }
      unsetenv("SHARDLM_CUDA_FP8_GEMV_MMA");
    }
  }
}

// More than one token, a residual left apart, or rows that are not the heads' leave the op to the
// caller (false, nothing run).
TEST(CudaQkvRope, LeavesOtherShapesToTheCaller) {
  SHARDLM_SKIP_WITHOUT_GPU();
  std::mt19937 rng(fresh_seed());
  const Shape s{256, 4, 2, 64};
  std::deque<std::vector<uint8_t>> bytes;
  const auto host_ws = qkv_matrices(s, rng, bytes);
  cuda::CudaBackendOptions o = small_cuda_options();
  o.max_matmul_k = s.d;
  cuda::CudaBackend be(o);
  std::deque<PreparedWeights> keep;
  std::vector<TensorView> ws;
  for (const TensorView& w : host_ws) ws.push_back(prepared(be, w, keep));
  ModelConfig c;
  c.head_dim = s.head_dim;
  const RopeParams rope = rope_params(c);
  const size_t pool = static_cast<size_t>(kSlots * s.n_kv_heads * s.head_dim);
  const KvLayerView kv = device_kv(be.alloc_kv(pool), be.alloc_kv(pool));
  float* x = to_device(be, randn(static_cast<size_t>(2 * s.d), rng));
  float* nw = to_device(be, randn(static_cast<size_t>(s.d), rng));
  float* out = be.alloc_floats(static_cast<size_t>(2 * s.d));
  StepInput step;
  step.positions = {3, 4};
  step.slots = {0, 1};
  const StepArrays st = begin_step(be, step);
  const TensorView* qkv[] = {&ws[0], &ws[1], &ws[2]};
  float* ys[] = {out, out, out};
  const Backend::QkvRope r{st.positions, st.slots, s.n_heads, s.n_kv_heads, rope, kv};
  EXPECT_FALSE(be.norm_qkv_rope({x, nullptr, nw, 2, s.d, 1e-5f, out}, qkv, ys, r)) << "2 tokens";
  EXPECT_FALSE(be.norm_qkv_rope({x, x, nw, 1, s.d, 1e-5f, out}, qkv, ys, r)) << "residual";
  const Backend::QkvRope wrong_heads{st.positions, st.slots, 2, s.n_kv_heads, rope, kv};
  EXPECT_FALSE(be.norm_qkv_rope({x, nullptr, nw, 1, s.d, 1e-5f, out}, qkv, ys, wrong_heads))
      << "Q rows not n_heads x head_dim";
  const auto off = cuda_backend_with(o, "SHARDLM_CUDA_QKV_ROPE", "0");
  EXPECT_FALSE(off->norm_qkv_rope({x, nullptr, nw, 1, s.d, 1e-5f, out}, qkv, ys, r))
      << "SHARDLM_CUDA_QKV_ROPE=0";
}

}  // namespace
}  // namespace shardlm::testing
