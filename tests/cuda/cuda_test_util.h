// Helpers for the CUDA tests: a skip when no GPU is visible, fresh random inputs (seed printed on
// failure), host <-> device copies through the backend, and the normalised error
// |got - ref| / |ref| that every comparison uses (NaN or a size mismatch counts as infinite).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/quant.h"
#include "backend/cuda/cuda_backend.h"
#include "core/fp16.h"

namespace shardlm::testing {

#define SHARDLM_SKIP_WITHOUT_GPU()                                                   \
  do {                                                                               \
    if (::shardlm::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA GPU visible"; \
  } while (0)

// A fresh seed per call, so every run draws new inputs; tests SCOPED_TRACE it.
inline uint32_t fresh_seed() {
  static std::random_device rd;
  return rd();
}

inline std::vector<float> randn(size_t n, std::mt19937& rng, float scale = 1.f, float mean = 0.f) {
  std::normal_distribution<float> nd(mean, scale);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

template <typename T>
double rel_err(const std::vector<float>& got, const std::vector<T>& ref) {
  if (got.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    const double d = double(got[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// The sum over the rows of two logit tables of `vocab` columns of KL(p_a || p_b) of their
// next-token distributions; where top1 is given, adds the rows whose largest logits agree.
inline double kl_sum(const std::vector<float>& a, const std::vector<float>& b, size_t vocab,
                     int64_t* top1 = nullptr) {
  double sum = 0;
  const size_t rows = a.size() / vocab;
  for (size_t r = 0; r < rows; ++r) {
    const float *x = a.data() + r * vocab, *y = b.data() + r * vocab;
    const double mx = *std::max_element(x, x + vocab), my = *std::max_element(y, y + vocab);
    double zx = 0, zy = 0;
    for (size_t i = 0; i < vocab; ++i) {
      zx += std::exp(x[i] - mx);
      zy += std::exp(y[i] - my);
    }
    for (size_t i = 0; i < vocab; ++i) {
      const double lx = x[i] - mx - std::log(zx), ly = y[i] - my - std::log(zy);
      sum += std::exp(lx) * (lx - ly);
    }
    if (top1) *top1 += std::max_element(x, x + vocab) - x == std::max_element(y, y + vocab) - y;
  }
  return sum;
}

// Its mean over the rows.
inline double mean_kl(const std::vector<float>& a, const std::vector<float>& b, size_t vocab) {
  return kl_sum(a, b, vocab) / double(a.size() / vocab);
}

inline float* to_device(cuda::CudaBackend& be, const std::vector<float>& host) {
  float* d = be.alloc_floats(host.size());
  be.from_host(host.data(), host.size(), d);
  return d;
}

// BF16 bits (a paged KV pool as the GPU keeps it) in device memory.
inline float* bits_to_device(cuda::CudaBackend& be, const std::vector<uint16_t>& bits) {
  std::vector<float> words((bits.size() + 1) / 2);
  std::memcpy(words.data(), bits.data(), bits.size() * sizeof(uint16_t));
  return to_device(be, words);
}

// A GPU KV layer over two pools of BF16 elements in device memory.
inline KvLayerView device_kv(void* k, void* v) {
  return {k, v, DType::BF16, MemSpace::kDevice};
}

// A weight prepared on `be` as a forward prepares its model's; the view stays valid while `keep`
// holds the result.
inline TensorView prepared(Backend& be, const TensorView& w, std::deque<PreparedWeights>& keep) {
  WeightSet set;
  set.matrices = {w};
  return keep.emplace_back(be.prepare_weights(set)).views.matrices[0];
}
inline const float* prepared(Backend& be, const std::vector<float>& v,
                             std::deque<PreparedWeights>& keep) {
  WeightSet set;
  set.vectors = {{v.data(), static_cast<int64_t>(v.size()), MemSpace::kHost}};
  return keep.emplace_back(be.prepare_weights(set)).views.vectors[0].data;
}

// Host index arrays as one step of a backend, as a forward's begin_step passes them: tokens,
// positions and slots (each empty or of one length), logit rows, attention sequences. The input
// must outlive the step (the CPU reads it in place).
struct StepInput {
  std::vector<int32_t> tokens, positions, slots, rows;
  const AttentionSeq* seqs = nullptr;
  int n_seqs = 0;
  int block_size = 16;
};
// A step of the attention sequences seqs alone.
inline StepInput attention_step(const std::vector<AttentionSeq>& seqs, int block_size) {
  StepInput in;
  in.seqs = seqs.data();
  in.n_seqs = static_cast<int>(seqs.size());
  in.block_size = block_size;
  return in;
}
inline StepArrays begin_step(Backend& be, const StepInput& in) {
  auto data = [](const std::vector<int32_t>& v) { return v.empty() ? nullptr : v.data(); };
  StepIndices ix;
  ix.tokens = data(in.tokens);
  ix.positions = data(in.positions);
  ix.slots = data(in.slots);
  ix.n_tokens =
      static_cast<int64_t>(std::max({in.tokens.size(), in.positions.size(), in.slots.size()}));
  ix.logit_rows = data(in.rows);
  ix.n_logit_rows = static_cast<int64_t>(in.rows.size());
  ix.seqs = in.seqs;
  ix.n_seqs = in.n_seqs;
  ix.block_size = in.block_size;
  return be.begin_step(ix);
}

// int32 arrays (block tables, sequence records) in device memory, as the kernels' types.
template <typename T>
const T* ints_to_device(cuda::CudaBackend& be, const std::vector<int32_t>& ints) {
  std::vector<float> words(ints.size());
  std::memcpy(words.data(), ints.data(), ints.size() * sizeof(int32_t));
  return reinterpret_cast<const T*>(to_device(be, words));
}

// Each value rounded to BF16 (what the GPU's KV cache keeps).
inline std::vector<float> bf16_rounded(const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_fp32(fp32_to_bf16(v[i]));
  return out;
}

inline std::vector<float> to_host(cuda::CudaBackend& be, const float* dev, size_t n) {
  std::vector<float> h(n);
  be.to_host(dev, n, h.data());
  return h;
}

inline cuda::CudaBackendOptions small_cuda_options() {
  cuda::CudaBackendOptions o;
  o.max_batch_tokens = 64;
  o.max_matmul_k = 1024;
  o.max_context = 256;
  return o;
}

// A CUDA backend made while the environment variable `var` is `value` (a switch its Impl reads
// once, at construction), to compare with one made without it.
inline std::unique_ptr<cuda::CudaBackend> cuda_backend_with(const cuda::CudaBackendOptions& o,
                                                            const char* var, const char* value) {
  setenv(var, value, 1);
  auto be = std::make_unique<cuda::CudaBackend>(o);
  unsetenv(var);
  return be;
}

inline CpuBackendOptions small_cpu_options(int64_t head_dim = 128) {
  CpuBackendOptions o;
  o.threads = 2;
  o.max_batch_tokens = 64;
  o.max_matmul_k = 1024;
  o.max_context = 256;
  o.head_dim = head_dim;
  return o;
}

// A weight matrix [rows][cols] of type t, made from random floats, as a TensorView over `bytes`.
inline TensorView make_matrix(DType t, int64_t cols, int64_t rows, std::mt19937& rng,
                              std::vector<uint8_t>& bytes, float scale = 0.1f) {
  const auto values = randn(static_cast<size_t>(cols * rows), rng, scale);
  const size_t rb = row_bytes(t, cols);
  bytes.assign(rb * static_cast<size_t>(rows), 0);
  for (int64_t r = 0; r < rows; ++r)
    cpu::quantize_row(t, values.data() + r * cols, bytes.data() + r * rb, cols);
  TensorView w;
  w.name = std::string(dtype_name(t)) + "_matrix";
  w.dtype = t;
  w.ne = {cols, rows, 1, 1};
  w.n_dims = 2;
  w.data = bytes.data();
  return w;
}

// Dequantised weights [rows][cols] in fp32 (the CPU reference dequantisation).
inline std::vector<float> dequantized(const TensorView& w) {
  std::vector<float> out(static_cast<size_t>(w.numel()));
  for (int64_t r = 0; r < w.rows(); ++r)
    cpu::dequantize_row(w.dtype, w.row(r), out.data() + r * w.ne[0], w.ne[0]);
  return out;
}

// The normalised error of 13 random rows of `table` looked up on the GPU (`dev_table`, its
// prepared copy) against the CPU backend's lookup.
inline double embedding_error(cuda::CudaBackend& be, CpuBackend& cpu, const TensorView& table,
                              const TensorView& dev_table, std::mt19937& rng) {
  StepInput in;
  in.tokens.resize(13);
  for (auto& id : in.tokens) id = static_cast<int32_t>(rng() % table.rows());
  const int64_t n = static_cast<int64_t>(in.tokens.size());
  std::vector<float> ref(in.tokens.size() * static_cast<size_t>(table.ne[0]));
  cpu.embedding(table, begin_step(cpu, in).tokens, n, ref.data());
  float* out = be.alloc_floats(ref.size());
  be.embedding(dev_table, begin_step(be, in).tokens, n, out);
  return rel_err(to_host(be, out, ref.size()), ref);
}

// norm_matmul (Q and K) then norm_mlp over host matrices {Q, K, gate, up, down} prepared on `be`
// (a CPU backend takes them as they are), with or without the residual add, aliased as the
// Transformer aliases them; the residual stream x and the three outputs back on the host.
struct NormOpsCase {
  int64_t tokens;
  bool residual;
  bool add_to_x = false;  // the MLP's output added to x (DenseMlp::add_to_y), mlp = x after it
};

// "9 tokens, residual, added to x": a case, for failure messages.
inline std::string describe(const NormOpsCase& c) {
  return std::to_string(c.tokens) + (c.residual ? " tokens, residual" : " tokens") +
         (c.add_to_x ? ", added to x" : "");
}

// A layer's Q, K, gate, up and down as random BF16 matrices over `bytes` for run_norm_ops:
// Q [q][d], K [k][d], gate and up [f][d], down [d][f], named as GGUF names them (so that
// --quantization fp8 quantises them, as it does every matrix but the embedding and the output).
inline std::vector<TensorView> norm_ops_matrices(int64_t d, int64_t q, int64_t k, int64_t f,
                                                 std::mt19937& rng,
                                                 std::deque<std::vector<uint8_t>>& bytes) {
  const char* names[] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_gate.weight",
                         "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"};
  const std::pair<int64_t, int64_t> shapes[] = {{d, q}, {d, k}, {d, f}, {d, f}, {f, d}};
  std::vector<TensorView> ws;
  for (int i = 0; i < 5; ++i) {
    ws.push_back(
        make_matrix(DType::BF16, shapes[i].first, shapes[i].second, rng, bytes.emplace_back()));
    ws.back().name = names[i];
  }
  return ws;
}

struct NormOpsResult {
  std::vector<float> x, q, k, mlp;
};

inline NormOpsResult run_norm_ops(Backend& be, const std::vector<TensorView>& host_ws,
                                  const std::vector<float>& norm_w, const std::vector<float>& x,
                                  const std::vector<float>& res, const NormOpsCase& c, int64_t d,
                                  int64_t f) {
  std::deque<PreparedWeights> keep;
  std::vector<TensorView> ws;
  for (const TensorView& w : host_ws) ws.push_back(be.host_memory() ? w : prepared(be, w, keep));
  const bool host = be.host_memory();
  auto dev = [&](const std::vector<float>& v) {
    float* p = be.alloc_floats(v.size());
    be.from_host(v.data(), v.size(), p);
    return p;
  };
  auto back = [&](const float* p, size_t n) {
    std::vector<float> out(n);
    be.to_host(p, n, out.data());
    return out;
  };
  const float* nw = host ? norm_w.data() : dev(norm_w);
  const int64_t T = c.tokens;
  NormOpsResult r;
  float* dx = dev(x);
  float* dres = c.residual ? dev(res) : nullptr;
  float* xn = be.alloc_floats(static_cast<size_t>(T * d));
  float* q = be.alloc_floats(static_cast<size_t>(T * ws[0].rows()));
  float* k = be.alloc_floats(static_cast<size_t>(T * ws[1].rows()));
  const TensorView* qk[] = {&ws[0], &ws[1]};
  float* ys[] = {q, k};
  be.norm_matmul({dx, dres, nw, T, d, 1e-5f, c.residual ? dres : xn}, qk, ys, 2);
  r.x = back(dx, x.size());
  r.q = back(q, static_cast<size_t>(T * ws[0].rows()));
  r.k = back(k, static_cast<size_t>(T * ws[1].rows()));
  float* gate = be.alloc_floats(static_cast<size_t>(T * f));
  float* up = be.alloc_floats(static_cast<size_t>(T * f));
  // A fresh residual (norm_matmul may have left its out, here the residual, unwritten or not),
  // aliased as the Transformer does: residual, out and y one buffer.
  float* y = c.residual ? dev(res) : xn;
  if (c.add_to_x) {  // as one rank's Transformer: out is scratch, the output goes into x
    be.norm_mlp({dx, c.residual ? y : nullptr, nw, T, d, 1e-5f, xn},
                {&ws[2], &ws[3], &ws[4], gate, up, true}, dx);
    r.mlp = back(dx, static_cast<size_t>(T * d));
    return r;
  }
  be.norm_mlp({dx, c.residual ? y : nullptr, nw, T, d, 1e-5f, y},
              {&ws[2], &ws[3], &ws[4], gate, up}, y);
  r.mlp = back(y, static_cast<size_t>(T * d));
  return r;
}

}  // namespace shardlm::testing
