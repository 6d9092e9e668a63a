// The FP8 kernels (--quantization fp8) against the CPU reference (fp8_reference.h) on fresh random
// inputs: the per-row quantisation (codes and scales), the FP8 GEMV at every 8B matrix shape and
// odd ones (Q/K/V in one launch, gate/up with SiLU), and the FP8 GEMM through cuBLASLt (and its
// BF16 fallback) with per-token activation scales, each by normalised error against fp64.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <iostream>
#include <string>

#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/gemm_fp8.h"
#include "backend/cuda/gemv_fp8.cuh"
#include "cuda_test_util.h"
#include "fp8_reference.h"

namespace shardlm::testing {
namespace {

// Sums in fp32 over the same FP8 weights and the inputs the kernel multiplies: rounding shows as
// about 1e-6.
constexpr double kGemvTolerance = 1e-4;

// What the FP8 GEMV multiplies: x rounded to BF16 on the tensor cores (gemv_fp8_mma.cuh), else x.
std::vector<float> gemv_input(const std::vector<float>& x, int64_t k, int64_t tokens) {
  if (!cuda::gemv_fp8_mma_takes(k, tokens)) return x;
  std::vector<float> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
  return r;
}

// n bytes on the device (backend memory: only kernels read them).
uint8_t* bytes_to_device(cuda::CudaBackend& be, const std::vector<uint8_t>& bytes) {
  std::vector<float> words((bytes.size() + 3) / 4);
  std::memcpy(words.data(), bytes.data(), bytes.size());
  return reinterpret_cast<uint8_t*>(to_device(be, words));
}

std::vector<uint8_t> bytes_to_host(cuda::CudaBackend& be, const uint8_t* dev, size_t n) {
  be.synchronize();
  std::vector<uint8_t> out(n);
  EXPECT_EQ(cudaMemcpy(out.data(), dev, n, cudaMemcpyDeviceToHost), cudaSuccess);
  return out;
}

// Random weights whose rows have magnitudes over four decades (so the scales matter), as fp32
// values that are exact BF16.
std::vector<float> random_weights(int64_t k, int64_t n, std::mt19937& rng) {
  auto w = randn(static_cast<size_t>(k * n), rng);
  std::uniform_real_distribution<float> decade(-3.f, 1.f);
  for (int64_t j = 0; j < n; ++j) {
    const float m = std::pow(10.f, decade(rng));
    for (int64_t i = 0; i < k; ++i) {
      float& v = w[static_cast<size_t>(j * k + i)];
      v = bf16_to_fp32(fp32_to_bf16(v * m));
    }
  }
  return w;
}

struct DeviceFp8 {
  const uint8_t* q;
  const float* scale;
};

DeviceFp8 upload(cuda::CudaBackend& be, const Fp8Rows& r) {
  return {bytes_to_device(be, r.q), to_device(be, r.scale)};
}

// y[t][j] = x[t] . w[j] in fp64 over the dequantised weights, [tokens][n].
std::vector<double> reference(const Fp8Rows& w, const std::vector<float>& x, int64_t tokens) {
  std::vector<double> out(static_cast<size_t>(tokens * w.n));
  std::vector<double> row(static_cast<size_t>(w.k));
  for (int64_t j = 0; j < w.n; ++j) {
    for (int64_t i = 0; i < w.k; ++i) row[static_cast<size_t>(i)] = w.at(j, i);
    for (int64_t t = 0; t < tokens; ++t) {
      double s = 0;
      for (int64_t i = 0; i < w.k; ++i) s += row[static_cast<size_t>(i)] * x[t * w.k + i];
      out[static_cast<size_t>(t * w.n + j)] = s;
    }
  }
  return out;
}

TEST(CudaFp8, QuantizeRowsMatchesCpuCodec) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const auto stream = static_cast<cudaStream_t>(be.stream());
  for (const auto& [k, n] : {std::pair<int64_t, int64_t>{4096, 64}, {14336, 7}, {40, 33}}) {
    auto w = random_weights(k, n, rng);
    std::fill(w.begin(), w.begin() + k, 0.f);  // an all-zero row: scale 1, codes 0
    std::vector<uint16_t> bits(w.size());
    for (size_t i = 0; i < w.size(); ++i) bits[i] = fp32_to_bf16(w[i]);
    const Fp8Rows ref = quantize_rows(w, k, n);
    float* scale = be.alloc_floats(static_cast<size_t>(n));
    auto* q = reinterpret_cast<uint8_t*>(be.alloc_floats(static_cast<size_t>((k * n + 3) / 4)));
    cuda::quantize_rows_fp8(reinterpret_cast<const uint16_t*>(bits_to_device(be, bits)), k, n, q,
                            scale, stream);
    EXPECT_LT(rel_err(to_host(be, scale, static_cast<size_t>(n)), ref.scale), 1e-7);
    const auto got = bytes_to_host(be, q, static_cast<size_t>(k * n));
    int64_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += got[i] != ref.q[i];
    EXPECT_EQ(differ, 0) << "of " << got.size() << " codes, [" << n << " x " << k << "]";
    // And the activations' version of the same on fp32 rows.
    const auto x = randn(static_cast<size_t>(k * n), rng, 3.f);
    const Fp8Rows xr = quantize_rows(x, k, n);
    cuda::quantize_activations_fp8(to_device(be, x), n, k, q, scale, stream);
    EXPECT_LT(rel_err(to_host(be, scale, static_cast<size_t>(n)), xr.scale), 1e-7);
    const auto gx = bytes_to_host(be, q, static_cast<size_t>(k * n));
    differ = 0;
    for (size_t i = 0; i < gx.size(); ++i) differ += gx[i] != xr.q[i];
    EXPECT_EQ(differ, 0) << "activation codes";
    // FP8 keeps about 2^-4 relative precision per element: the rows' error is a few per cent.
    std::vector<double> deq(w.size());
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < k; ++i) deq[static_cast<size_t>(j * k + i)] = ref.at(j, i);
    EXPECT_LT(rel_err(w, deq), 0.05);
  }
}

void check_gemv(cuda::CudaBackend& be, const std::vector<const Fp8Rows*>& ws, int64_t tokens,
                std::mt19937& rng, const char* what) {
  const int64_t k = ws[0]->k;
  const auto x = randn(static_cast<size_t>(tokens * k), rng);
  const float* dx = to_device(be, x);
  cuda::Fp8Segments segs{};
  segs.count = static_cast<int>(ws.size());
  for (size_t s = 0; s < ws.size(); ++s) {
    const DeviceFp8 d = upload(be, *ws[s]);
    segs.w[s] = d.q;
    segs.scale[s] = d.scale;
    segs.y[s] = be.alloc_floats(static_cast<size_t>(tokens * ws[s]->n));
    segs.n[s] = ws[s]->n;
  }
  cuda::gemv_fp8_segments(segs, k, dx, tokens, static_cast<cudaStream_t>(be.stream()));
  const auto xin = gemv_input(x, k, tokens);
  for (size_t s = 0; s < ws.size(); ++s) {
    const auto y = to_host(be, segs.y[s], static_cast<size_t>(tokens * ws[s]->n));
    EXPECT_LT(rel_err(y, reference(*ws[s], xin, tokens)), kGemvTolerance)
        << what << " segment " << s << " [" << ws[s]->n << " x " << k << "], " << tokens
        << " tokens";
  }
}

void check_gate_up(cuda::CudaBackend& be, const Fp8Rows& g, const Fp8Rows& u, int64_t tokens,
                   std::mt19937& rng) {
  const auto x = randn(static_cast<size_t>(tokens * g.k), rng);
  const DeviceFp8 dg = upload(be, g), du = upload(be, u);
  float* out = be.alloc_floats(static_cast<size_t>(tokens * g.n));
  cuda::gemv_fp8_gate_up_silu(dg.q, dg.scale, du.q, du.scale, g.k, g.n, to_device(be, x), tokens,
                              out, static_cast<cudaStream_t>(be.stream()));
  const auto xin = gemv_input(x, g.k, tokens);
  const auto rg = reference(g, xin, tokens), ru = reference(u, xin, tokens);
  std::vector<double> ref(rg.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = rg[i] / (1 + std::exp(-rg[i])) * ru[i];
  EXPECT_LT(rel_err(to_host(be, out, ref.size()), ref), kGemvTolerance)
      << "gate/up [" << g.n << " x " << g.k << "], " << tokens << " tokens";
}

// Every kernel: the default (the tensor cores from 2 tokens), the tensor cores at every batch size
// (SHARDLM_CUDA_FP8_GEMV_MMA=all) and the CUDA-core kernels at every batch size (=0).
TEST(CudaFp8, GemvMatchesFp64Reference) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  auto rows = [&](int64_t k, int64_t n) { return quantize_rows(random_weights(k, n, rng), k, n); };
  // The 8B shapes, with n cut to keep the fp64 reference quick (n only sets the grid).
  const Fp8Rows q = rows(4096, 512), kk = rows(4096, 128), v = rows(4096, 128);
  const Fp8Rows gate = rows(4096, 300), up = rows(4096, 300), down = rows(14336, 64);
  // Odd shapes: k a multiple of 16 but of no pass or chunk, n of no block or tile, a segment of
  // odd rows; 14352 columns take two launches of the tensor-core kernel at 8 tokens.
  const Fp8Rows a = rows(16, 1), b = rows(272, 13), c = rows(4112, 37), d = rows(14352, 5);
  const Fp8Rows e = rows(1040, 7), f = rows(1040, 9);
  for (const char* mma : {"1", "all", "0"}) {
    setenv("SHARDLM_CUDA_FP8_GEMV_MMA", mma, 1);
    SCOPED_TRACE(std::string("SHARDLM_CUDA_FP8_GEMV_MMA=") + mma);
    for (int64_t tokens : {1, 2, 3, 4, 5, 8}) {
      check_gemv(be, {&q, &kk, &v}, tokens, rng, "q/k/v");
      check_gemv(be, {&down}, tokens, rng, "down");
      check_gate_up(be, gate, up, tokens, rng);
      for (const Fp8Rows* odd : {&a, &b, &c, &d}) check_gemv(be, {odd}, tokens, rng, "odd");
      check_gemv(be, {&e, &f, &e}, tokens, rng, "odd segments");
      be.synchronize();
    }
  }
  unsetenv("SHARDLM_CUDA_FP8_GEMV_MMA");
}

// On the tensor cores a token's outputs are the same bits alone and in any batch up to 8 (the
// tokens are the mma's columns; at 14,336 columns 8 tokens take two launches).
TEST(CudaFp8, GemvTokenAloneEqualsInABatch) {
  SHARDLM_SKIP_WITHOUT_GPU();
  setenv("SHARDLM_CUDA_FP8_GEMV_MMA", "all", 1);
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const auto stream = static_cast<cudaStream_t>(be.stream());
  for (const int64_t k : {int64_t{4096}, int64_t{14336}}) {
    const int64_t n = 200;
    const DeviceFp8 w = upload(be, quantize_rows(random_weights(k, n, rng), k, n));
    const auto x = randn(static_cast<size_t>(8 * k), rng);
    const float* dx = to_device(be, x);
    float* batch = be.alloc_floats(static_cast<size_t>(8 * n));
    float* alone = be.alloc_floats(static_cast<size_t>(n));
    for (int64_t tokens = 2; tokens <= 8; ++tokens) {
      cuda::gemv_fp8(w.q, w.scale, k, n, dx, tokens, batch, stream);
      const auto all = to_host(be, batch, static_cast<size_t>(tokens * n));
      for (int64_t t = 0; t < tokens; ++t) {
        cuda::gemv_fp8(w.q, w.scale, k, n, dx + t * k, 1, alone, stream);
        const auto one = to_host(be, alone, static_cast<size_t>(n));
        EXPECT_TRUE(std::equal(one.begin(), one.end(), all.begin() + t * n))
            << "token " << t << " of " << tokens << ", k " << k;
      }
    }
  }
  unsetenv("SHARDLM_CUDA_FP8_GEMV_MMA");
}

// One Fp8Gemm (its scales in the GEMM, or by the epilogue kernel) against the fp64 reference.
void check_fp8_gemm(cuda::CudaBackend& be, bool scales_in_gemm, std::mt19937& rng) {
  SCOPED_TRACE(scales_in_gemm ? "scales in the GEMM" : "scales by the epilogue");
  setenv("SHARDLM_CUDA_FP8_GEMM_SCALES", scales_in_gemm ? "1" : "0", 1);
  const auto stream = static_cast<cudaStream_t>(be.stream());
  cuda::Gemm bf16(stream);
  cuda::Fp8Gemm gemm(stream, bf16);
  unsetenv("SHARDLM_CUDA_FP8_GEMM_SCALES");
  // cuBLASLt must take the 8B shapes on Hopper (else every prefill would take the fallback).
  EXPECT_TRUE(gemm.lt_supports(4096, 6144, 2048));
  EXPECT_TRUE(gemm.lt_supports(14336, 4096, 37));
  if (!scales_in_gemm) EXPECT_FALSE(gemm.scales_in_gemm(4096, 6144, 2048));
  std::cout << "[fp8 gemm] scales in the GEMM asked " << scales_in_gemm
            << ", taken at 8B shapes: " << gemm.scales_in_gemm(4096, 6144, 2048)
            << gemm.scales_in_gemm(4096, 6144, 252) << gemm.scales_in_gemm(14336, 4096, 37) << "\n";
  struct Shape {
    int64_t k, n, tokens;
  };
  for (const Shape& s :
       {Shape{4096, 256, 64}, Shape{14336, 96, 37}, Shape{512, 1000, 9}, Shape{40, 33, 17}}) {
    const auto w = random_weights(s.k, s.n, rng);
    const Fp8Rows wq = quantize_rows(w, s.k, s.n);
    const auto x = randn(static_cast<size_t>(s.tokens * s.k), rng);
    const DeviceFp8 dw = upload(be, wq);
    float* y = be.alloc_floats(static_cast<size_t>(s.tokens * s.n));
    const bool lt = gemm.lt_supports(s.k, s.n, s.tokens);
    const float* dx = to_device(be, x);
    gemm.matmul(dw.q, dw.scale, s.k, s.n, dx, s.tokens, y);
    const auto got = to_host(be, y, static_cast<size_t>(s.tokens * s.n));
    // cuBLASLt multiplies x quantised per token; the fallback x rounded to BF16.
    std::vector<float> xin(x.size());
    if (lt) {
      const Fp8Rows xq = quantize_rows(x, s.k, s.tokens);
      for (int64_t t = 0; t < s.tokens; ++t)
        for (int64_t i = 0; i < s.k; ++i)
          xin[static_cast<size_t>(t * s.k + i)] = float(xq.at(t, i));
    } else {
      for (size_t i = 0; i < x.size(); ++i) xin[i] = bf16_to_fp32(fp32_to_bf16(x[i]));
    }
    // The fallback also rounds the dequantised weights to BF16 (2^-9).
    // FP8 tensor cores add in reduced precision between cuBLASLt's fp32 promotions: 1e-3.
    const std::vector<double> ref = reference(wq, xin, s.tokens);
    EXPECT_LT(rel_err(got, ref), lt ? 1e-3 : 1e-2)
        << (lt ? "cuBLASLt" : "fallback") << " [" << s.n << " x " << s.k << "] by " << s.tokens;
    if (lt) {  // one quantisation of x for two products over it (Q/K/V, gate/up)
      float* y2 = be.alloc_floats(static_cast<size_t>(s.tokens * s.n));
      gemm.quantize_input(dx, s.tokens, s.k);
      gemm.matmul_quantized(dw.q, dw.scale, s.k, s.n, s.tokens, y);
      gemm.matmul_quantized(dw.q, dw.scale, s.k, s.n, s.tokens, y2);
      EXPECT_LT(rel_err(to_host(be, y, got.size()), ref), 1e-3) << "quantised once, first";
      EXPECT_LT(rel_err(to_host(be, y2, got.size()), ref), 1e-3) << "quantised once, second";
    }
    // Against the unquantised product: what FP8 costs (a few per cent per output).
    std::vector<double> exact(static_cast<size_t>(s.tokens * s.n));
    for (int64_t t = 0; t < s.tokens; ++t)
      for (int64_t j = 0; j < s.n; ++j) {
        double acc = 0;
        for (int64_t i = 0; i < s.k; ++i) acc += double(w[j * s.k + i]) * x[t * s.k + i];
        exact[static_cast<size_t>(t * s.n + j)] = acc;
      }
    EXPECT_LT(rel_err(got, exact), 0.06) << "FP8 against the unquantised product";
    be.synchronize();
  }
  EXPECT_FALSE(gemm.lt_supports(40, 33, 17));  // k % 16 != 0: the fallback ran
}

TEST(CudaFp8, GemmMatchesFp64Reference) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  for (bool scales_in_gemm : {true, false}) check_fp8_gemm(be, scales_in_gemm, rng);
}

// --quantization fp8 through the backend's ops: registered weights quantised at load, then matmul,
// matmul_shared_input (Q/K/V) and gate_up_silu at decode sizes (the GEMV) and prefill sizes
// (cuBLASLt); the token embedding and output projection stay BF16.
TEST(CudaFp8, BackendOpsOnQuantisedWeights) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackendOptions o = small_cuda_options();
  o.max_matmul_k = 4096;
  o.fp8_weights = true;
  cuda::CudaBackend be(o);
  struct Weight {
    std::vector<uint16_t> bits;
    Fp8Rows ref;
    TensorView view;
  };
  std::deque<Weight> keep;
  std::deque<PreparedWeights> device;  // the prepared views' copies
  auto weight = [&](const char* name, int64_t k, int64_t n) -> const Weight& {
    const auto w = random_weights(k, n, rng);
    Weight& r = keep.emplace_back();
    for (float v : w) r.bits.push_back(fp32_to_bf16(v));
    r.ref = quantize_rows(w, k, n);
    r.view.name = name;
    r.view.dtype = DType::BF16;
    r.view.ne = {k, n, 1, 1};
    r.view.n_dims = 2;
    r.view.data = r.bits.data();
    r.view = prepared(be, r.view, device);  // FP8 where Fp8Linear::quantises it
    return r;
  };
  const Weight &q = weight("blk.0.attn_q.weight", 4096, 256),
               &kw = weight("blk.0.attn_k.weight", 4096, 64),
               &g = weight("blk.0.ffn_gate.weight", 1024, 96),
               &u = weight("blk.0.ffn_up.weight", 1024, 96),
               &out = weight("output.weight", 1024, 50);
  EXPECT_LT(be.weight_bytes(), size_t{4096 * 320 + 1024 * 192} + 2 * 1024 * 50 + 4096);
  for (int64_t tokens : {1, 5, 8, 64}) {
    SCOPED_TRACE(tokens);
    const bool gemv = tokens <= 8;
    auto input = [&](int64_t k) {
      auto x = randn(static_cast<size_t>(tokens * k), rng);
      // What the kernels multiply: x (rounded to BF16 on the tensor cores), or x quantised per
      // token.
      std::vector<float> eff = gemv_input(x, k, tokens);
      if (!gemv) {
        const Fp8Rows xq = quantize_rows(x, k, tokens);
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t i = 0; i < k; ++i) eff[static_cast<size_t>(t * k + i)] = float(xq.at(t, i));
      }
      return std::pair{x, eff};
    };
    const double tol = gemv ? kGemvTolerance : 1e-3;
    {
      const auto [x, eff] = input(4096);
      float* dx = to_device(be, x);
      float* ys[2] = {be.alloc_floats(static_cast<size_t>(tokens * 256)),
                      be.alloc_floats(static_cast<size_t>(tokens * 64))};
      const TensorView* ws[2] = {&q.view, &kw.view};
      be.matmul_shared_input(ws, ys, 2, dx, tokens);
      EXPECT_LT(rel_err(to_host(be, ys[0], static_cast<size_t>(tokens * 256)),
                        reference(q.ref, eff, tokens)),
                tol)
          << "q";
      EXPECT_LT(rel_err(to_host(be, ys[1], static_cast<size_t>(tokens * 64)),
                        reference(kw.ref, eff, tokens)),
                tol)
          << "k";
    }
    {
      const auto [x, eff] = input(1024);
      float* dx = to_device(be, x);
      const size_t n = static_cast<size_t>(tokens * 96);
      float *gate = be.alloc_floats(n), *up = be.alloc_floats(n);
      be.gate_up_silu(g.view, u.view, dx, tokens, gate, up);
      const auto rg = reference(g.ref, eff, tokens), ru = reference(u.ref, eff, tokens);
      std::vector<double> ref(n);
      for (size_t i = 0; i < n; ++i) ref[i] = rg[i] / (1 + std::exp(-rg[i])) * ru[i];
      EXPECT_LT(rel_err(to_host(be, gate, n), ref), gemv ? kGemvTolerance : 2e-3) << "gate/up";
      // The output projection is BF16: the BF16 GEMV, or cuBLAS on BF16-rounded inputs.
      float* y = be.alloc_floats(static_cast<size_t>(tokens * 50));
      be.matmul(out.view, dx, tokens, y);
      std::vector<double> ref_out(static_cast<size_t>(tokens * 50));
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t j = 0; j < 50; ++j) {
          double acc = 0;
          for (int64_t i = 0; i < 1024; ++i) {
            const float xi = x[static_cast<size_t>(t * 1024 + i)];
            acc += double(bf16_to_fp32(out.bits[static_cast<size_t>(j * 1024 + i)])) *
                   (gemv ? xi : bf16_to_fp32(fp32_to_bf16(xi)));
          }
          ref_out[static_cast<size_t>(t * 50 + j)] = acc;
        }
      EXPECT_LT(rel_err(to_host(be, y, ref_out.size()), ref_out), 1e-4) << "output (BF16)";
    }
    be.synchronize();
  }
}

// With --quantization fp8 the norms and SiLU·up write the FP8 GEMMs' quantised inputs themselves
// (Fp8Linear::norm_matmul / norm_mlp; gate and up left unscaled for SiLU·up to scale): the same
// codes, scales and so outputs, bit for bit, as the norm, the quantisation pass, the epilogue and
// SiLU·up run apart (SHARDLM_CUDA_BF16_HANDOFF=0), at a GEMV batch and GEMM batches, with and
// without the residual add; and within FP8 rounding of the CPU's BF16 ops.
TEST(CudaFp8, NormOpsQuantiseInTheNorm) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackendOptions o = small_cuda_options();
  o.max_matmul_k = 5008;
  o.fp8_weights = true;
  cuda::CudaBackend fused(o);
  const auto apart_be = cuda_backend_with(o, "SHARDLM_CUDA_BF16_HANDOFF", "0");
  cuda::CudaBackend& apart = *apart_be;
  CpuBackend cpu(small_cpu_options());
  const int64_t d = 1024;
  // SiLU·up's rows: one float4 per thread of its kernel, and 2.4 (the last pass partial).
  for (const int64_t f : {int64_t{2048}, int64_t{5008}}) {
    SCOPED_TRACE("f " + std::to_string(f));
    std::deque<std::vector<uint8_t>> bytes;
    const auto ws = norm_ops_matrices(d, 512, 128, f, rng, bytes);
    const auto norm_w = randn(static_cast<size_t>(d), rng, 0.2f, 1.f);
    for (const NormOpsCase c :
         {NormOpsCase{1, true}, {64, false}, {64, true}, {300, true}, {64, false, true}}) {
      const auto x = randn(static_cast<size_t>(c.tokens * d), rng);
      const auto res = randn(x.size(), rng);
      const auto a = run_norm_ops(fused, ws, norm_w, x, res, c, d, f);
      const auto b = run_norm_ops(apart, ws, norm_w, x, res, c, d, f);
      const auto ref = run_norm_ops(cpu, ws, norm_w, x, res, c, d, f);
      const std::string what = describe(c);
      EXPECT_EQ(a.x, b.x) << what;
      EXPECT_EQ(a.q, b.q) << "q " << what;
      EXPECT_EQ(a.k, b.k) << "k " << what;
      EXPECT_EQ(a.mlp, b.mlp) << "mlp " << what;
      EXPECT_LT(rel_err(a.q, ref.q), 0.1) << "q " << what << " vs CPU";
      EXPECT_LT(rel_err(a.mlp, ref.mlp), 0.1) << "mlp " << what << " vs CPU";
    }
  }
}

}  // namespace
}  // namespace shardlm::testing
