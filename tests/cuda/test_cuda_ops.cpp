// Every CUDA op against its CPU reference on fresh random inputs, by normalised error: fp32 ops to
// ~1e-5, the BF16 ones (embedding, matmul) within BF16 rounding.
#include <algorithm>
#include <deque>
#include <numeric>
#include <string>
#include <tuple>

#include "backend/cpu/quant.h"
#include "cuda_test_util.h"
#include "model/rope_config.h"

namespace shardlm::testing {
namespace {

TEST(CudaOps, EmbeddingMatchesCpu) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  std::deque<PreparedWeights> keep;
  for (DType t : {DType::F32, DType::Q8_0, DType::Q4_1, DType::Q6_K}) {
    std::vector<uint8_t> bytes;
    const TensorView table = make_matrix(t, 256, 300, rng, bytes);
    const TensorView dev_table = prepared(be, table, keep);
    EXPECT_LT(embedding_error(be, cpu, table, dev_table, rng), 4e-3) << dtype_name(t);
  }
}

// A tensor-parallel rank 0 prepares the tied embedding table and its vocabulary slice, which
// starts at the same address with fewer rows, in one set: in either order they share one whole
// copy, so a lookup of a token past the slice through the table still reads the right row.
TEST(CudaOps, PrefixSliceSharesItsTable) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  CpuBackend cpu(small_cpu_options());
  for (bool slice_first : {false, true}) {
    cuda::CudaBackend be(small_cuda_options());
    std::vector<uint8_t> bytes;
    const TensorView table = make_matrix(DType::Q8_0, 256, 300, rng, bytes);
    TensorView slice = table;
    slice.ne[1] = 100;
    WeightSet set;
    set.matrices = {slice_first ? slice : table, slice_first ? table : slice};
    const PreparedWeights dev = be.prepare_weights(set);
    const TensorView& dev_table = dev.views.matrices[slice_first ? 1 : 0];
    const TensorView& dev_slice = dev.views.matrices[slice_first ? 0 : 1];
    EXPECT_EQ(dev_table.data, dev_slice.data) << "one copy";
    EXPECT_EQ(dev_slice.rows(), 100);
    EXPECT_EQ(be.weight_bytes(), size_t{256 * 300 * 2}) << "the table once, as BF16";
    StepInput in;
    in.tokens = {5, 99, 100, 250, 299};  // inside and past the slice
    const int64_t n = static_cast<int64_t>(in.tokens.size());
    std::vector<float> ref(in.tokens.size() * 256);
    cpu.embedding(table, begin_step(cpu, in).tokens, n, ref.data());
    float* out = be.alloc_floats(ref.size());
    be.embedding(dev_table, begin_step(be, in).tokens, n, out);
    EXPECT_LT(rel_err(to_host(be, out, ref.size()), ref), 4e-3) << "slice first " << slice_first;
  }
}

TEST(CudaOps, RmsNormMatchesCpu) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  std::deque<PreparedWeights> keep;
  for (int64_t dim : {64, 576, 2048}) {
    const int64_t rows = 7;
    const auto x = randn(static_cast<size_t>(rows * dim), rng, 2.f);
    const auto w = randn(static_cast<size_t>(dim), rng, 0.2f, 1.f);
    std::vector<float> ref(x.size());
    cpu.rms_norm(x.data(), w.data(), rows, dim, 1e-5f, ref.data());
    float* dx = to_device(be, x);
    be.rms_norm(dx, prepared(be, w, keep), rows, dim, 1e-5f, dx);  // in place, as q/k norms run
    EXPECT_LT(rel_err(to_host(be, dx, x.size()), ref), 1e-5) << dim;
  }
}

TEST(CudaOps, MatmulMatchesFp64ReferenceForEveryWeightType) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  const int64_t k = 512, n = 96;
  std::deque<PreparedWeights> keep;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                  DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    std::vector<uint8_t> bytes;
    const TensorView w = make_matrix(t, k, n, rng, bytes);
    const TensorView dw = prepared(be, w, keep);
    const auto wf = dequantized(w);
    for (int64_t tokens : {1, 7, 8, 9, 40}) {
      const auto x = randn(static_cast<size_t>(tokens * k), rng);
      std::vector<double> ref(static_cast<size_t>(tokens * n));
      for (int64_t t0 = 0; t0 < tokens; ++t0)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t i = 0; i < k; ++i) s += double(wf[j * k + i]) * x[t0 * k + i];
          ref[t0 * n + j] = s;
        }
      std::vector<float> cpu_y(ref.size());
      cpu.matmul(w, x.data(), tokens, cpu_y.data());
      float* y = be.alloc_floats(ref.size());
      be.matmul(dw, to_device(be, x), tokens, y);
      const auto got = to_host(be, y, ref.size());
      EXPECT_LT(rel_err(got, ref), 1e-2) << dtype_name(t) << " x " << tokens;
      EXPECT_LT(rel_err(got, cpu_y), 2e-2) << dtype_name(t) << " x " << tokens << " vs CPU";
    }
  }
}

// matmul_shared_input over the three matrices ws against one matmul per matrix of refs (the same
// products), on fresh inputs of `tokens` rows.
void expect_shared_input_equals_matmuls(cuda::CudaBackend& be, const TensorView* const* ws,
                                        const TensorView* const* refs, int64_t k, int64_t tokens,
                                        std::mt19937& rng, double tol, const std::string& what) {
  const auto x = randn(static_cast<size_t>(tokens * k), rng);
  float* dx = to_device(be, x);
  float* ys[3];
  for (int i = 0; i < 3; ++i) ys[i] = be.alloc_floats(static_cast<size_t>(tokens * ws[i]->rows()));
  be.matmul_shared_input(ws, ys, 3, dx, tokens);
  for (int i = 0; i < 3; ++i) {
    const size_t n = static_cast<size_t>(tokens * ws[i]->rows());
    float* one = be.alloc_floats(n);
    be.matmul(*refs[i], dx, tokens, one);
    EXPECT_LT(rel_err(to_host(be, ys[i], n), to_host(be, one, n)), tol)
        << "weight " << i << " x " << tokens << what;
  }
}

TEST(CudaOps, MatmulSharedInputMatchesSeparateMatmuls) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const int64_t k = 256;
  std::deque<std::vector<uint8_t>> bytes;
  std::deque<PreparedWeights> keep;
  std::vector<TensorView> ws;
  for (int64_t n : {96, 32, 40}) {  // Q, K, V-like widths
    ws.push_back(prepared(be, make_matrix(DType::Q4_1, k, n, rng, bytes.emplace_back()), keep));
  }
  const TensorView* wp[] = {&ws[0], &ws[1], &ws[2]};
  for (int64_t tokens : {1, 5, 40}) {
    expect_shared_input_equals_matmuls(be, wp, wp, k, tokens, rng, 1e-6, "");
  }
}

// Q/K/V prepared as an adjacent run (weight_set.h) lie end to end, and matmul_shared_input over
// them (one GEMM split by columns from 9 to 512 tokens, the GEMV at 1, three GEMMs at 600) equals
// matmuls over the same matrices uploaded apart. A run whose member is the first rows of a wider
// listed matrix is left apart (the member reads the wider copy) and still multiplies right.
TEST(CudaOps, MatmulSharedInputOverAdjacentWeights) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const int64_t k = 256;
  std::deque<std::vector<uint8_t>> bytes;
  std::deque<PreparedWeights> keep;
  WeightSet run;
  for (int64_t n : {128, 32, 32}) {
    run.matrices.push_back(make_matrix(DType::BF16, k, n, rng, bytes.emplace_back()));
  }
  run.adjacent = {{0, 1, 2}};
  const WeightSet together = keep.emplace_back(be.prepare_weights(run)).views;
  std::vector<TensorView> apart;
  for (const TensorView& w : run.matrices) apart.push_back(prepared(be, w, keep));
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(together.matrices[i].data,
              static_cast<const uint16_t*>(together.matrices[i - 1].data) +
                  together.matrices[i - 1].numel());
  }
  WeightSet shared = run;  // the run's K is the first 16 rows of a matrix also listed whole
  TensorView k_whole = run.matrices[1];
  shared.matrices[1].ne[1] = 16;
  shared.matrices.push_back(k_whole);
  const WeightSet left_apart = keep.emplace_back(be.prepare_weights(shared)).views;
  EXPECT_EQ(left_apart.matrices[1].data, left_apart.matrices[3].data);  // one copy of K, apart
  std::vector<TensorView> apart_k16 = apart;
  apart_k16[1] = prepared(be, shared.matrices[1], keep);
  for (const WeightSet* views : {&together, &left_apart}) {
    const TensorView* wp[] = {&views->matrices[0], &views->matrices[1], &views->matrices[2]};
    const std::vector<TensorView>& refs = views == &together ? apart : apart_k16;
    const TensorView* rp[] = {&refs[0], &refs[1], &refs[2]};
    for (int64_t tokens : {1, 9, 40, 512, 600}) {
      expect_shared_input_equals_matmuls(be, wp, rp, k, tokens, rng, 1e-5,
                                         views == &together ? " together" : " apart");
    }
  }
}

TEST(CudaOps, GateUpSiluMatchesUnfusedOps) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const int64_t k = 256, n = 200;
  std::deque<std::vector<uint8_t>> bytes;
  std::deque<PreparedWeights> keep;
  const TensorView wg =
      prepared(be, make_matrix(DType::Q4_1, k, n, rng, bytes.emplace_back()), keep);
  const TensorView wu =
      prepared(be, make_matrix(DType::Q8_0, k, n, rng, bytes.emplace_back()), keep);
  for (int64_t tokens : {1, 6, 40}) {
    const size_t out = static_cast<size_t>(tokens * n);
    float* dx = to_device(be, randn(static_cast<size_t>(tokens * k), rng));
    float *g1 = be.alloc_floats(out), *u1 = be.alloc_floats(out);
    be.gate_up_silu(wg, wu, dx, tokens, g1, u1);
    float *g2 = be.alloc_floats(out), *u2 = be.alloc_floats(out);
    const TensorView* ws[] = {&wg, &wu};
    float* ys[] = {g2, u2};
    be.matmul_shared_input(ws, ys, 2, dx, tokens);
    be.silu_mul(g2, u2, g2, static_cast<int64_t>(out));
    EXPECT_LT(rel_err(to_host(be, g1, out), to_host(be, g2, out)), 1e-5) << tokens << " tokens";
  }
}

// norm_matmul and norm_mlp with the normed rows (and SiLU·up, gate and up) handed to the GEMMs as
// BF16 equal the same ops converting in the GEMM (SHARDLM_CUDA_BF16_HANDOFF=0), and the CPU's
// separate ops,
// with and without the residual add, at a GEMV batch and GEMM batches. The residual stream x
// comes out the same too.
TEST(CudaOps, NormMatmulAndMlpHandOffBf16) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend handoff(small_cuda_options());
  const auto convert_be = cuda_backend_with(small_cuda_options(), "SHARDLM_CUDA_BF16_HANDOFF", "0");
  cuda::CudaBackend& convert = *convert_be;
  CpuBackend cpu(small_cpu_options());
  const int64_t d = 256, f = 512;
  std::deque<std::vector<uint8_t>> bytes;
  const auto ws = norm_ops_matrices(d, 128, 64, f, rng, bytes);
  const auto norm_w = randn(static_cast<size_t>(d), rng, 0.2f, 1.f);
  for (const NormOpsCase c : {NormOpsCase{1, true}, {1, false}, {1, false, true}, {9, false},
                             {9, true}, {9, false, true}, {40, true}, {40, false, true},
                             {600, true}}) {
    const auto x = randn(static_cast<size_t>(c.tokens * d), rng);
    const auto res = randn(x.size(), rng);
    const auto a = run_norm_ops(handoff, ws, norm_w, x, res, c, d, f);
    const auto b = run_norm_ops(convert, ws, norm_w, x, res, c, d, f);
    const auto ref = run_norm_ops(cpu, ws, norm_w, x, res, c, d, f);
    const std::string what = describe(c);
    EXPECT_LT(rel_err(a.x, b.x), 1e-7) << what;
    EXPECT_LT(rel_err(a.x, ref.x), 1e-6) << what;
    for (auto [got, conv, cpu_ref, name] : {std::tuple{&a.q, &b.q, &ref.q, "q"},
                                            {&a.k, &b.k, &ref.k, "k"},
                                            {&a.mlp, &b.mlp, &ref.mlp, "mlp"}}) {
      // The handed-off MLP rounds gate and up to BF16 before SiLU·up: within BF16 rounding.
      const double tol = std::string(name) == "mlp" && c.tokens > 8 ? 1e-2 : 1e-5;
      EXPECT_LT(rel_err(*got, *conv), tol) << name << " " << what;
      EXPECT_LT(rel_err(*got, *cpu_ref), 2e-2) << name << " " << what << " vs CPU";
    }
  }
}

TEST(CudaOps, RopeStoreKvMatchesCpu) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    ModelConfig c;
    c.head_dim = 64;
    c.rope_theta = 10000.f;
    c.rope_style = style;
    const RopeParams p = rope_params(c);
    const int n_heads = 6, n_kv_heads = 2, n_tokens = 11, slots_total = 64;
    const int64_t kv_dim = int64_t{n_kv_heads} * c.head_dim;
    StepInput in;
    std::vector<int32_t>& pos = in.positions;
    std::vector<int32_t>& slots = in.slots;
    pos.resize(n_tokens);
    slots.resize(slots_total);
    for (auto& v : pos) v = static_cast<int32_t>(rng() % 3000);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng);
    slots.resize(n_tokens);
    auto q = randn(static_cast<size_t>(n_tokens * n_heads * c.head_dim), rng);
    auto k = randn(static_cast<size_t>(n_tokens * kv_dim), rng);
    const auto v = randn(k.size(), rng);
    const size_t pool = static_cast<size_t>(slots_total * kv_dim);
    std::vector<float> ck(pool, 0.f), cv(pool, 0.f);
    float *dq = to_device(be, q), *dk = to_device(be, k), *dv = to_device(be, v);
    const KvLayerView dev_kv = device_kv(be.alloc_kv(pool), be.alloc_kv(pool));  // BF16, zeroed
    const StepArrays cs = begin_step(cpu, in);
    cpu.rope_store_kv(q.data(), k.data(), v.data(), cs.positions, cs.slots, n_tokens, n_heads,
                      n_kv_heads, p, {ck.data(), cv.data()});
    const StepArrays ds = begin_step(be, in);
    be.rope_store_kv(dq, dk, dv, ds.positions, ds.slots, n_tokens, n_heads, n_kv_heads, p, dev_kv);
    EXPECT_LT(rel_err(to_host(be, dq, q.size()), q), 1e-5) << "q";
    EXPECT_LT(rel_err(to_host(be, dk, k.size()), k), 1e-5) << "k";
    // The cache holds BF16: the CPU's rows rounded (a k element whose fp32 value differs in the
    // last bits can round the other way, hence not exactly 0).
    EXPECT_LT(rel_err(be.kv_to_host(dev_kv.k, pool), bf16_rounded(ck)), 1e-4) << "cached k";
    EXPECT_EQ(rel_err(be.kv_to_host(dev_kv.v, pool), bf16_rounded(cv)), 0.0) << "cached v";
  }
}

TEST(CudaOps, AddRmsNormMatchesCpu) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  const int64_t rows = 5, dim = 576;
  const auto x = randn(static_cast<size_t>(rows * dim), rng), y = randn(x.size(), rng);
  const auto w = randn(static_cast<size_t>(dim), rng, 0.2f, 1.f);
  std::deque<PreparedWeights> keep;
  const float* dw = prepared(be, w, keep);
  auto rx = x, ry = y;
  cpu.add_rms_norm(rx.data(), ry.data(), w.data(), rows, dim, 1e-5f, ry.data());
  float* dx = to_device(be, x);
  float* dy = to_device(be, y);
  be.add_rms_norm(dx, dy, dw, rows, dim, 1e-5f, dy);  // out = y, as the Transformer runs it
  EXPECT_LT(rel_err(to_host(be, dx, x.size()), rx), 1e-6) << "x + y";
  EXPECT_LT(rel_err(to_host(be, dy, y.size()), ry), 1e-5) << "norm";
}

TEST(CudaOps, ElementwiseOpsMatchCpu) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  const int64_t rows = 9, dim = 1536, n = rows * dim;
  const auto a = randn(static_cast<size_t>(n), rng, 3.f), b = randn(static_cast<size_t>(n), rng);
  const auto bias = randn(static_cast<size_t>(dim), rng);
  std::deque<PreparedWeights> keep;
  const float* dbias = prepared(be, bias, keep);

  std::vector<float> ref(a.size());
  cpu.silu_mul(a.data(), b.data(), ref.data(), n);
  float* out = be.alloc_floats(a.size());
  be.silu_mul(to_device(be, a), to_device(be, b), out, n);
  EXPECT_LT(rel_err(to_host(be, out, a.size()), ref), 1e-6) << "silu_mul";

  ref = a;
  cpu.add(ref.data(), b.data(), n);
  float* x = to_device(be, a);
  be.add(x, to_device(be, b), n);
  EXPECT_LT(rel_err(to_host(be, x, a.size()), ref), 1e-6) << "add";

  ref = a;
  cpu.add_bias(ref.data(), bias.data(), rows, dim);
  x = to_device(be, a);
  be.add_bias(x, dbias, rows, dim);
  EXPECT_LT(rel_err(to_host(be, x, a.size()), ref), 1e-6) << "add_bias";

  StepInput pick;
  pick.rows = {8, 0, 3, 3, 5};
  const auto n_pick = static_cast<int64_t>(pick.rows.size());
  ref.assign(pick.rows.size() * dim, 0.f);
  cpu.gather_rows(a.data(), begin_step(cpu, pick).logit_rows, n_pick, dim, ref.data());
  out = be.alloc_floats(ref.size());
  be.gather_rows(to_device(be, a), begin_step(be, pick).logit_rows, n_pick, dim, out);
  EXPECT_EQ(rel_err(to_host(be, out, ref.size()), ref), 0.0) << "gather_rows";
}

TEST(CudaOps, RopeMatchesCpuForBothPairings) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  CpuBackend cpu(small_cpu_options());
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int head_dim : {64, 128}) {
      ModelConfig c;
      c.head_dim = head_dim;
      c.rope_theta = 100000.f;
      c.rope_style = style;
      const RopeParams p = rope_params(c);
      const int n_heads = 3, n_tokens = 9;
      StepInput in;
      in.positions.resize(n_tokens);
      for (auto& v : in.positions) v = static_cast<int32_t>(rng() % 8000);
      const auto x = randn(static_cast<size_t>(n_tokens * n_heads * head_dim), rng);
      auto ref = x;
      cpu.rope(ref.data(), begin_step(cpu, in).positions, n_tokens, n_heads, p);
      float* dx = to_device(be, x);
      be.rope(dx, begin_step(be, in).positions, n_tokens, n_heads, p);
      EXPECT_LT(rel_err(to_host(be, dx, x.size()), ref), 1e-5)
          << (style == RopeStyle::kNeox ? "neox" : "normal") << " head_dim " << head_dim;
    }
  }
}

// Sequences over one paged cache with scattered blocks: decode steps after 37 and 300 cached
// tokens, a chunk after a 9-token cached prefix, and a fresh 5-token prompt. With a 21-token chunk
// the batch has few enough (row, head) items that the keys are split (flash-decoding); with a
// 50-token chunk it is not.
struct AttentionCase {
  AttentionParams p;
  std::vector<std::vector<int32_t>> tables;
  std::vector<AttentionSeq> seqs;
  int n_rows = 0;
  int n_blocks = 128;
};

AttentionCase make_case(int head_dim, int window, int chunk, std::mt19937& rng) {
  AttentionCase c;
  c.p = {6, 2, head_dim, 4, window, 1.f / std::sqrt(static_cast<float>(head_dim))};
  const int32_t shapes[4][2] = {{1, 37}, {chunk, 9}, {5, 0}, {1, 300}};  // n_tokens, n_past
  std::vector<int32_t> free(c.n_blocks);
  std::iota(free.begin(), free.end(), 0);
  std::shuffle(free.begin(), free.end(), rng);
  size_t next = 0;
  for (const auto& s : shapes) {
    const int32_t blocks = (s[0] + s[1] + c.p.block_size - 1) / c.p.block_size;
    c.tables.emplace_back(free.begin() + next, free.begin() + next + blocks);
    next += blocks;
  }
  for (size_t i = 0; i < 4; ++i) {
    c.seqs.push_back({c.n_rows, shapes[i][0], shapes[i][1], c.tables[i].data()});
    c.n_rows += shapes[i][0];
  }
  return c;
}

TEST(CudaOps, StoreKvAndPagedAttentionMatchCpu) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  for (int head_dim : {64, 128}) {
    for (int window : {0, 7}) {
      for (int chunk : {21, 50}) {
        SCOPED_TRACE(::testing::Message()
                     << "head_dim " << head_dim << " window " << window << " chunk " << chunk);
        AttentionCase c = make_case(head_dim, window, chunk, rng);
        const AttentionParams& p = c.p;
        const int64_t kv_dim = int64_t{p.n_kv_heads} * p.head_dim;
        const int64_t q_dim = int64_t{p.n_heads} * p.head_dim;
        const size_t pool = static_cast<size_t>(c.n_blocks * p.block_size * kv_dim);
        cuda::CudaBackend be(small_cuda_options());
        CpuBackendOptions co = small_cpu_options(head_dim);
        co.max_context = 512;
        CpuBackend cpu(co);
        std::vector<float> host_k(pool), host_v(pool);
        const KvLayerView cpu_kv{host_k.data(), host_v.data()};
        const KvLayerView dev_kv = device_kv(be.alloc_kv(pool), be.alloc_kv(pool));
        for (const AttentionSeq& s : c.seqs) {  // every position of every sequence
          const int32_t n = s.n_past + s.n_tokens;
          StepInput in;
          in.slots.resize(static_cast<size_t>(n));
          for (int32_t j = 0; j < n; ++j)
            in.slots[j] = s.block_table[j / p.block_size] * p.block_size + j % p.block_size;
          const auto k = randn(static_cast<size_t>(n * kv_dim), rng);
          const auto v = randn(static_cast<size_t>(n * kv_dim), rng);
          cpu.store_kv(cpu_kv, k.data(), v.data(), begin_step(cpu, in).slots, n, kv_dim);
          be.store_kv(dev_kv, to_device(be, k), to_device(be, v), begin_step(be, in).slots, n,
                      kv_dim);
        }
        // The GPU cache holds the rows rounded to BF16; the reference attends over the same.
        // (In place: cpu_kv points into these vectors.)
        std::vector<float> rounded = bf16_rounded(host_k);
        std::copy(rounded.begin(), rounded.end(), host_k.begin());
        rounded = bf16_rounded(host_v);
        std::copy(rounded.begin(), rounded.end(), host_v.begin());
        EXPECT_EQ(rel_err(be.kv_to_host(dev_kv.k, pool), host_k), 0.0) << "store_kv";
        EXPECT_EQ(rel_err(be.kv_to_host(dev_kv.v, pool), host_v), 0.0) << "store_kv";
        const auto q = randn(static_cast<size_t>(c.n_rows * q_dim), rng);
        // The sequences as one step's, as the Transformer runs them.
        const StepInput in = attention_step(c.seqs, p.block_size);
        std::vector<float> ref(q.size());
        cpu.attention(q.data(), cpu_kv, begin_step(cpu, in).seqs, p, ref.data());
        float* dq = to_device(be, q);
        float* out = be.alloc_floats(q.size());
        be.attention(dq, dev_kv, begin_step(be, in).seqs, p, out);
        // Batches with chunks run on the tensor cores, whose operands (queries, softmax weights)
        // are BF16: about 3e-3 of normalised error (test_cuda_attention_prefill.cpp).
        EXPECT_LT(rel_err(to_host(be, out, q.size()), ref), 1e-2);
      }
    }
  }
}

}  // namespace
}  // namespace shardlm::testing
