// Fp8Linear: the FP8 matmul dispatch (GEMV up to kGemvMaxTokens tokens, cuBLASLt above).
#include "backend/cuda/fp8_linear.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/fp8_quant.cuh"
#include "backend/cuda/gemv_fp8.cuh"
#include "core/error.h"

namespace shardlm::cuda {

void check_fp8_device(int device) {
  cudaDeviceProp prop{};
  SHARDLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  if (prop.major * 10 + prop.minor < 89) {
    fail(
        "--quantization fp8 needs FP8 tensor cores (compute capability 8.9 or newer: Ada, Hopper, "
        "Blackwell); GPU {} ({}) is sm_{}{}; run without --quantization fp8",
        device, prop.name, prop.major, prop.minor);
  }
}

Fp8Linear::Fp8Linear(cudaStream_t stream, Gemm& bf16, int64_t max_tokens, int64_t max_k)
    : stream_(stream), gemm_(stream, bf16) {
  gemm_.reserve_inputs(max_tokens, max_k);
}

namespace {

// The FP8 GEMV's segments for matrices of one row length (at most kGemvMaxSegments).
Fp8Segments fp8_segments(const TensorView* const* ws, float* const* ys, int count) {
  Fp8Segments segs{};
  segs.count = count;
  for (int i = 0; i < count; ++i) {
    const Fp8Matrix m = fp8_parts(*ws[i]);
    segs.w[i] = m.q;
    segs.scale[i] = m.scale;
    segs.y[i] = ys[i];
    segs.n[i] = ws[i]->rows();
  }
  return segs;
}

}  // namespace

bool Fp8Linear::is_fp8(const TensorView& w) {
  return w.dtype == DType::F8_E4M3;
}

bool Fp8Linear::quantises(const TensorView& w) {
  const std::string name(w.name);
  // GGUF and dummy names, and Hugging Face's (a safetensors view keeps its file name).
  for (const char* kept :
       {"token_embd.weight", "output.weight", "model.embed_tokens.weight", "lm_head.weight"}) {
    if (name == kept) return false;
  }
  return w.ne[0] % 16 == 0;
}

bool Fp8Linear::matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) {
  if (!is_fp8(w)) return false;
  const Fp8Matrix m = fp8_parts(w);
  const int64_t k = w.ne[0], n = w.rows();
  if (gemv_fp8_fits(k, n_tokens)) {
    gemv_fp8(m.q, m.scale, k, n, x, n_tokens, y, stream_);
  } else {
    gemm_.matmul(m.q, m.scale, k, n, x, n_tokens, y);
  }
  return true;
}

bool Fp8Linear::matmul_shared_input(const TensorView* const* w, float* const* ys, int count,
                                    const float* x, int64_t n_tokens) {
  const int64_t k = w[0]->ne[0];
  for (int i = 0; i < count; ++i) {
    if (!is_fp8(*w[i])) return false;
  }
  bool one_launch = count <= kGemvMaxSegments && gemv_fp8_fits(k, n_tokens);
  for (int i = 0; i < count; ++i) one_launch = one_launch && w[i]->ne[0] == k;
  if (!one_launch) {
    bool shared = !gemv_fp8_fits(k, n_tokens);  // GEMMs over one quantisation of x
    for (int i = 0; i < count; ++i) {
      shared = shared && w[i]->ne[0] == k && gemm_.lt_supports(k, w[i]->rows(), n_tokens);
    }
    if (!shared) {
      for (int i = 0; i < count; ++i) matmul(*w[i], x, n_tokens, ys[i]);
      return true;
    }
    gemm_.quantize_input(x, n_tokens, k);
    for (int i = 0; i < count; ++i) {
      const Fp8Matrix m = fp8_parts(*w[i]);
      gemm_.matmul_quantized(m.q, m.scale, k, w[i]->rows(), n_tokens, ys[i]);
    }
    return true;
  }
  gemv_fp8_segments(fp8_segments(w, ys, count), k, x, n_tokens, stream_);
  return true;
}

bool Fp8Linear::gate_up_silu(const TensorView& w_gate, const TensorView& w_up, const float* x,
                             int64_t n_tokens, float* gate) {
  const int64_t k = w_gate.ne[0], n = w_gate.rows();
  if (!is_fp8(w_gate) || !is_fp8(w_up) || w_up.ne[0] != k || w_up.rows() != n ||
      !gemv_fp8_fits(k, n_tokens)) {
    return false;  // the backend's default: two matmuls (FP8 GEMMs), then silu_mul
  }
  const Fp8Matrix g = fp8_parts(w_gate), u = fp8_parts(w_up);
  gemv_fp8_gate_up_silu(g.q, g.scale, u.q, u.scale, k, n, x, n_tokens, gate, stream_);
  return true;
}

bool Fp8Linear::matmul_add(const TensorView& w, const float* x, int64_t n_tokens, float* y,
                           float* scratch) {
  if (!is_fp8(w)) return false;
  const Fp8Matrix m = fp8_parts(w);
  const int64_t k = w.ne[0], n = w.rows();
  if (gemv_fp8_fits(k, n_tokens)) {
    Fp8Segments segs{{m.q}, {m.scale}, {y}, {n}, 1};
    segs.accumulate = true;
    gemv_fp8_segments(segs, k, x, n_tokens, stream_);
    return true;
  }
  const TensorView* ws[] = {&w};
  if (!quantized_input_fits(ws, 1, n_tokens)) return false;  // matmul, then add
  gemm_.quantize_input(x, n_tokens, k);
  add_product(m, k, n, n_tokens, y, scratch);
  return true;
}

// y += the product over the quantised input: raw into scratch, then scaled and added.
void Fp8Linear::add_product(const Fp8Matrix& m, int64_t k, int64_t n, int64_t n_tokens, float* y,
                            float* scratch) {
  if (gemm_.matmul_quantized(m.q, m.scale, k, n, n_tokens, scratch, false)) {
    add(y, scratch, n_tokens * n, stream_);  // cuBLASLt applied the scales
  } else {
    scale_fp8_product(scratch, n_tokens, n, gemm_.input_scales(), m.scale, stream_, y);
  }
}

bool Fp8Linear::norm_gemv(const Backend::NormIn& in, const TensorView* const* ws,
                          float* const* ys, int count, bool gate_up) {
  if (!gemv_fp8_norm_fits(in.dim, in.rows)) return false;
  if (gate_up) {
    const Fp8Matrix g = fp8_parts(*ws[0]), u = fp8_parts(*ws[1]);
    gemv_fp8_gate_up_silu(g.q, g.scale, u.q, u.scale, in.dim, ws[0]->rows(), in.x, 1, ys[0],
                          stream_, in.w, in.eps);
    return true;
  }
  Fp8Segments segs = fp8_segments(ws, ys, count);
  segs.norm_w = in.w;
  segs.norm_eps = in.eps;
  gemv_fp8_segments(segs, in.dim, in.x, 1, stream_);
  return true;
}

bool Fp8Linear::norm_qkv_rope(const Backend::NormIn& in, const TensorView* const* ws,
                              float* const* ys, const GemvRope& rope) {
  if (!gemv_fp8_norm_fits(in.dim, in.rows)) return false;
  Fp8Segments segs = fp8_segments(ws, ys, 3);
  segs.norm_w = in.w;
  segs.norm_eps = in.eps;
  gemv_fp8_qkv_rope(segs, rope, in.dim, in.x, stream_);
  return true;
}

bool Fp8Linear::quantized_input_fits(const TensorView* const* ws, int count, int64_t n_tokens) {
  const int64_t k = ws[0]->ne[0];
  if (gemv_fp8_fits(k, n_tokens) || k % 4 != 0) return false;
  for (int i = 0; i < count; ++i) {
    if (!is_fp8(*ws[i]) || ws[i]->ne[0] != k || !gemm_.lt_supports(k, ws[i]->rows(), n_tokens)) {
      return false;
    }
  }
  return true;
}

bool Fp8Linear::norm_matmul(const Backend::NormIn& in, const TensorView* const* ws,
                            float* const* ys, int count) {
  if (!quantized_input_fits(ws, count, in.rows)) return false;
  const Fp8Gemm::Input q = gemm_.input_buffers(in.rows, in.dim);
  norm_quantize_fp8(in.x, in.residual, in.w, in.rows, in.dim, in.eps, q.q, q.scale, stream_);
  for (int i = 0; i < count; ++i) {
    const Fp8Matrix m = fp8_parts(*ws[i]);
    gemm_.matmul_quantized(m.q, m.scale, in.dim, ws[i]->rows(), in.rows, ys[i]);
  }
  return true;
}

bool Fp8Linear::norm_mlp(const Backend::NormIn& in, const Backend::DenseMlp& mlp, float* y) {
  const TensorView* gate_up[] = {mlp.gate, mlp.up};
  if (!quantized_input_fits(gate_up, 2, in.rows) || !quantized_input_fits(&mlp.down, 1, in.rows) ||
      mlp.up->rows() != mlp.gate->rows()) {
    return false;
  }
  const Fp8Matrix g = fp8_parts(*mlp.gate), u = fp8_parts(*mlp.up), d = fp8_parts(*mlp.down);
  if (reinterpret_cast<uintptr_t>(g.scale) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(u.scale) % 16 != 0) {
    return false;  // SiLU·up reads the row scales four at a time
  }
  const int64_t f = mlp.gate->rows();
  // Grown for both inputs first: growing drops the contents.
  const Fp8Gemm::Input q = gemm_.input_buffers(in.rows, std::max(in.dim, f));
  norm_quantize_fp8(in.x, in.residual, in.w, in.rows, in.dim, in.eps, q.q, q.scale, stream_);
  const bool g_scaled =
      gemm_.matmul_quantized(g.q, g.scale, in.dim, f, in.rows, mlp.gate_out, false);
  const bool u_scaled = gemm_.matmul_quantized(u.q, u.scale, in.dim, f, in.rows, mlp.up_out, false);
  if (g_scaled != u_scaled) fail("internal: FP8 gate and up GEMMs scaled differently");
  silu_mul_quantize_fp8(mlp.gate_out, mlp.up_out, g_scaled ? nullptr : q.scale, g.scale, u.scale,
                        in.rows, f, q.q, q.scale, stream_);
  if (mlp.add_to_y) {
    add_product(d, f, mlp.down->rows(), in.rows, y, in.out);
  } else {
    gemm_.matmul_quantized(d.q, d.scale, f, mlp.down->rows(), in.rows, y);
  }
  return true;
}

}  // namespace shardlm::cuda
