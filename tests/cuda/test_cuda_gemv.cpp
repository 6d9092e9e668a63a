// The decode GEMV (backend/cuda/gemv.cu) against an fp64 reference on fresh random BF16 weights
// and fp32 inputs, by normalised error: every matrix shape of Llama-3.1-8B through the backend's
// ops (Q/K/V in one launch, gate/up with SiLU), shapes whose k or n is a multiple of no variant's
// tile, and each batch-1 kernel variant called directly (the dispatch may pick any of them).
#include <algorithm>
#include <cstring>
#include <deque>

#include "backend/cuda/gemv.cuh"
#include "cuda_test_util.h"

namespace shardlm::testing {
namespace {

// The GPU reads the same BF16 weights and fp32 inputs and sums in fp32: a wrong element or row
// shows as an error of order 1, rounding as about 1e-6.
constexpr double kTolerance = 1e-4;

struct Matrix {
  int64_t k = 0, n = 0;
  std::vector<uint16_t> bits;  // [n][k] BF16
  PreparedWeights device;      // its copy on the backend (prepare)

  TensorView host_view() const {  // over bits
    TensorView v;
    v.name = "gemv_matrix";
    v.dtype = DType::BF16;
    v.ne = {k, n, 1, 1};
    v.n_dims = 2;
    v.data = bits.data();
    return v;
  }
  void prepare(Backend& be) {
    WeightSet set;
    set.matrices = {host_view()};
    device = be.prepare_weights(set);
  }
  const TensorView& view() const { return device.views.matrices.at(0); }  // for the backend
};

// Random BF16 weights, uniform in [-0.1, 0.1) (xorshift: the vocabulary matrix has 525M of them).
Matrix random_matrix(int64_t k, int64_t n, std::mt19937& rng) {
  Matrix m;
  m.k = k;
  m.n = n;
  m.bits.resize(static_cast<size_t>(k * n));
  uint32_t s = rng() | 1u;
  for (uint16_t& b : m.bits) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    b = fp32_to_bf16(static_cast<float>(static_cast<int32_t>(s)) * (0.1f / 2147483648.f));
  }
  return m;
}

// Every row, or about 2,000 spread over the matrix and its last 64 for the vocabulary matrix.
std::vector<int64_t> rows_to_check(int64_t n) {
  std::vector<int64_t> rows;
  const int64_t step = std::max<int64_t>(1, n / 2000);
  for (int64_t j = 0; j < n; j += step) rows.push_back(j);
  for (int64_t j = std::max<int64_t>(0, n - 64); j < n; ++j)
    if (j % step != 0) rows.push_back(j);
  return rows;
}

// x[t] . w[j] in fp64, [tokens][rows.size()].
std::vector<double> reference(const Matrix& w, const std::vector<float>& x, int64_t tokens,
                              const std::vector<int64_t>& rows) {
  std::vector<double> out(static_cast<size_t>(tokens) * rows.size());
  std::vector<double> wr(static_cast<size_t>(w.k));
  for (size_t r = 0; r < rows.size(); ++r) {
    const uint16_t* row = w.bits.data() + rows[r] * w.k;
    for (int64_t i = 0; i < w.k; ++i) wr[static_cast<size_t>(i)] = bf16_to_fp32(row[i]);
    for (int64_t t = 0; t < tokens; ++t) {
      double s = 0;
      for (int64_t i = 0; i < w.k; ++i) s += wr[static_cast<size_t>(i)] * x[t * w.k + i];
      out[static_cast<size_t>(t) * rows.size() + r] = s;
    }
  }
  return out;
}

double silu(double g) {
  return g / (1 + std::exp(-g));
}

// The GPU's y [tokens][n] at `rows`, laid out as reference() lays out its result.
std::vector<float> gather(const std::vector<float>& y, int64_t n, int64_t tokens,
                          const std::vector<int64_t>& rows) {
  std::vector<float> out(static_cast<size_t>(tokens) * rows.size());
  for (int64_t t = 0; t < tokens; ++t)
    for (size_t r = 0; r < rows.size(); ++r)
      out[static_cast<size_t>(t) * rows.size() + r] = y[static_cast<size_t>(t * n + rows[r])];
  return out;
}

// Checks y = x W^T for the segments ws through matmul (one weight) or matmul_shared_input.
void check_matmul(cuda::CudaBackend& be, const std::vector<const Matrix*>& ws, int64_t tokens,
                  std::mt19937& rng, const std::string& what, double tolerance = kTolerance) {
  const int64_t k = ws[0]->k;
  const auto x = randn(static_cast<size_t>(tokens * k), rng);
  float* dx = to_device(be, x);
  std::vector<float*> ys;
  std::vector<TensorView> views;
  std::vector<const TensorView*> view_ptrs;
  for (const Matrix* w : ws) {
    ys.push_back(be.alloc_floats(static_cast<size_t>(tokens * w->n)));
    views.push_back(w->view());
  }
  for (const TensorView& v : views) view_ptrs.push_back(&v);
  if (ws.size() == 1) {
    be.matmul(views[0], dx, tokens, ys[0]);
  } else {
    be.matmul_shared_input(view_ptrs.data(), ys.data(), static_cast<int>(ws.size()), dx, tokens);
  }
  for (size_t i = 0; i < ws.size(); ++i) {
    const auto rows = rows_to_check(ws[i]->n);
    const auto y = to_host(be, ys[i], static_cast<size_t>(tokens * ws[i]->n));
    EXPECT_LT(rel_err(gather(y, ws[i]->n, tokens, rows), reference(*ws[i], x, tokens, rows)),
              tolerance)
        << what << ", weight " << i << " [" << ws[i]->n << " x " << k << "], " << tokens
        << " tokens";
  }
}

// Checks gate = silu(x Wg^T) * (x Wu^T) through gate_up_silu.
void check_gate_up(cuda::CudaBackend& be, const Matrix& wg, const Matrix& wu, int64_t tokens,
                   std::mt19937& rng, const std::string& what) {
  const auto x = randn(static_cast<size_t>(tokens * wg.k), rng);
  float* dx = to_device(be, x);
  const size_t out = static_cast<size_t>(tokens * wg.n);
  float *gate = be.alloc_floats(out), *up = be.alloc_floats(out);
  be.gate_up_silu(wg.view(), wu.view(), dx, tokens, gate, up);
  const auto rows = rows_to_check(wg.n);
  const auto g = reference(wg, x, tokens, rows), u = reference(wu, x, tokens, rows);
  std::vector<double> ref(g.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = silu(g[i]) * u[i];
  EXPECT_LT(rel_err(gather(to_host(be, gate, out), wg.n, tokens, rows), ref), kTolerance)
      << what << " [" << wg.n << " x " << wg.k << "], " << tokens << " tokens";
}

cuda::CudaBackendOptions gemv_options(int64_t max_k) {
  cuda::CudaBackendOptions o = small_cuda_options();
  o.max_matmul_k = max_k;
  return o;
}

TEST(CudaGemv, Llama8BShapesMatchFp64Reference) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  const int64_t d = 4096, kv = 1024, ffn = 14336, vocab = 128256;
  std::deque<Matrix> keep;  // each holds its host bits and its prepared device copy
  auto matrix = [&](int64_t k, int64_t n) -> const Matrix& {
    return keep.emplace_back(random_matrix(k, n, rng));
  };
  const Matrix &q = matrix(d, d), &k = matrix(d, kv), &v = matrix(d, kv), &o = matrix(d, d);
  const Matrix &gate = matrix(d, ffn), &up = matrix(d, ffn), &down = matrix(ffn, d);
  const Matrix& output = matrix(d, vocab);
  cuda::CudaBackend be(gemv_options(ffn));
  for (Matrix& m : keep) m.prepare(be);
  for (int64_t tokens : {1, 2, 4, 8}) {
    check_matmul(be, {&q, &k, &v}, tokens, rng, "q/k/v");
    check_matmul(be, {&o}, tokens, rng, "o");
    check_gate_up(be, gate, up, tokens, rng, "gate/up");
    check_matmul(be, {&down}, tokens, rng, "down");
  }
  for (int64_t tokens : {1, 8}) check_matmul(be, {&output}, tokens, rng, "output projection");
}

// k a multiple of 8 (the GEMV's 16-byte rows) but of no pass (32 lanes x 2..16 vectors), n of no
// block's rows, segments of odd sizes; and k = 100, which takes the GEMM path instead.
TEST(CudaGemv, OddShapesMatchFp64Reference) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  std::deque<Matrix> keep;
  cuda::CudaBackend be(gemv_options(14344));
  auto matrix = [&](int64_t k, int64_t n) -> const Matrix& {
    Matrix& m = keep.emplace_back(random_matrix(k, n, rng));
    m.prepare(be);
    return m;
  };
  const std::pair<int64_t, int64_t> shapes[] = {{8, 1},      {264, 13},    {1000, 1001}, {4104, 3},
                                                {14344, 77}, {4104, 1001}, {100, 33}};
  for (const auto& [k, n] : shapes) {
    const Matrix& w = matrix(k, n);
    // k % 8 != 0 goes through the GEMM, which rounds x to BF16 (the matmul test's 1e-2).
    const double tolerance = k % 8 == 0 ? kTolerance : 1e-2;
    for (int64_t tokens : {1, 3, 8}) check_matmul(be, {&w}, tokens, rng, "one weight", tolerance);
  }
  const Matrix &a = matrix(1000, 37), &b = matrix(1000, 5), &c = matrix(1000, 11);
  const Matrix &g1 = matrix(4104, 77), &u1 = matrix(4104, 77), &g2 = matrix(8, 1),
               &u2 = matrix(8, 1);
  for (int64_t tokens : {1, 3, 8}) {
    check_matmul(be, {&a, &b, &c}, tokens, rng, "segments");
    check_gate_up(be, g1, u1, tokens, rng, "gate/up");
    check_gate_up(be, g2, u2, tokens, rng, "gate/up");
  }
}

// n BF16 values on the device (as the backend's float memory: only kernels read them).
const uint16_t* bf16_to_device(cuda::CudaBackend& be, const std::vector<uint16_t>& bits) {
  std::vector<float> words((bits.size() + 1) / 2);
  std::memcpy(words.data(), bits.data(), bits.size() * sizeof(uint16_t));
  return reinterpret_cast<const uint16_t*>(to_device(be, words));
}

TEST(CudaGemv, EveryBatchOneVariantMatchesFp64Reference) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const auto stream = static_cast<cudaStream_t>(be.stream());
  // Three segments (37 + 5 + 11 rows) and a gate/up pair (13 rows), k = 4104: 513 vectors a row.
  const int64_t k = 4104;
  const Matrix segs[] = {random_matrix(k, 37, rng), random_matrix(k, 5, rng),
                         random_matrix(k, 11, rng)};
  const Matrix wg = random_matrix(k, 13, rng), wu = random_matrix(k, 13, rng);
  const auto x = randn(static_cast<size_t>(k), rng);
  const float* dx = to_device(be, x);
  cuda::GemvSegments dev{};
  dev.count = 3;
  for (int s = 0; s < 3; ++s) {
    dev.w[s] = bf16_to_device(be, segs[s].bits);
    dev.y[s] = be.alloc_floats(static_cast<size_t>(segs[s].n));
    dev.n[s] = segs[s].n;
  }
  const uint16_t *dg = bf16_to_device(be, wg.bits), *du = bf16_to_device(be, wu.bits);
  float* gate = be.alloc_floats(13);
  for (int v = 0; v < cuda::gemv_variant_count(); ++v) {
    SCOPED_TRACE(cuda::gemv_variant_name(v));
    cuda::gemv_bf16_variant(v, dev, k, dx, stream);
    for (int s = 0; s < 3; ++s) {
      const auto rows = rows_to_check(segs[s].n);
      const auto y = to_host(be, dev.y[s], static_cast<size_t>(segs[s].n));
      EXPECT_LT(rel_err(y, reference(segs[s], x, 1, rows)), kTolerance) << "segment " << s;
    }
    cuda::gemv_gate_up_silu_variant(v, dg, du, k, 13, dx, gate, stream);
    const auto rows = rows_to_check(13);
    const auto g = reference(wg, x, 1, rows), u = reference(wu, x, 1, rows);
    std::vector<double> ref(g.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = silu(g[i]) * u[i];
    EXPECT_LT(rel_err(to_host(be, gate, 13), ref), kTolerance) << "gate/up";
    be.synchronize();  // outputs are reused by the next variant
  }
}

}  // namespace
}  // namespace shardlm::testing
