// CudaBackend's linear layers: matmul (GEMV for decode batches, cuBLAS GEMMs above, FP8 and
// quantised weights through their own dispatch), matrices sharing an input, the residual adds in
// a matmul's epilogue, and the norms handed to the matmuls they feed (BF16 rows for the GEMMs; at
// one token, the norm inside the GEMV).
#include <algorithm>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/gemv_fp8.cuh"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope.cuh"

namespace shardlm::cuda {

void CudaBackend::matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) {
  const auto timed = impl_->profile->time("matmul");
  if (impl_->fp8 && impl_->fp8->matmul(w, x, n_tokens, y)) return;
  if (impl_->quant && impl_->quant->matmul(w, x, n_tokens, y)) return;
  const int64_t k = w.ne[0], n = w.rows();
  if (!QuantLinear::is_quant(w) && gemv_fits(k, n_tokens)) {  // decode: one memory-bound kernel
    gemv_bf16(matrix(w), k, n, x, n_tokens, y, impl_->stream);
    return;
  }
  impl_->reserve_bf16(n_tokens * k);
  cuda::to_bf16(x, n_tokens * k, impl_->x_bf16, impl_->stream);
  gemm_on_bf16_input(w, n_tokens, y);
}

bool CudaBackend::adds_in_epilogue(const TensorView& w, int64_t n_tokens) const {
  const bool epilogue = w.dtype == DType::BF16 || (impl_->fp8 && Fp8Linear::is_fp8(w));
  return epilogue &&
         (impl_->residual_epilogue == Impl::Epilogue::kAll ||
          (impl_->residual_epilogue == Impl::Epilogue::kGemv && n_tokens <= kGemvMaxTokens));
}

void CudaBackend::matmul_add(const TensorView& w, const float* x, int64_t n_tokens, float* y,
                             float* scratch) {
  const auto timed = impl_->profile->time("matmul_add");
  if (impl_->fp8 && impl_->fp8->matmul_add(w, x, n_tokens, y, scratch)) return;
  const int64_t k = w.ne[0], n = w.rows();
  if (w.dtype != DType::BF16) {  // no add epilogue for its type (GGUF blocks): matmul, then add
    Backend::matmul_add(w, x, n_tokens, y, scratch);
    return;
  }
  if (gemv_fits(k, n_tokens)) {
    GemvSegments segs{{matrix(w)}, {y}, {n}, 1};
    segs.accumulate = true;
    gemv_bf16_segments(segs, k, x, n_tokens, impl_->stream);
    return;
  }
  impl_->reserve_bf16(n_tokens * k);
  cuda::to_bf16(x, n_tokens * k, impl_->x_bf16, impl_->stream);
  impl_->gemm->bf16_add(matrix(w), k, n, impl_->x_bf16, n_tokens, y);
}

CudaBackend::StagedWeights CudaBackend::staged_weights(const NormIn& in,
                                                       const TensorView* const* ws,
                                                       int count) const {
  if (!impl_->norm_in_gemv || in.residual || count > kGemvMaxSegments) {
    return StagedWeights::kNone;
  }
  bool bf16 = true, fp8 = impl_->fp8 != nullptr;
  for (int i = 0; i < count; ++i) {
    if (ws[i]->ne[0] != in.dim) return StagedWeights::kNone;
    bf16 = bf16 && ws[i]->dtype == DType::BF16;
    fp8 = fp8 && Fp8Linear::is_fp8(*ws[i]);
  }
  if (fp8) return StagedWeights::kFp8;
  return bf16 && gemv_norm_fits(in.dim, in.rows) ? StagedWeights::kBf16 : StagedWeights::kNone;
}

bool CudaBackend::norm_in_gemv(const NormIn& in, const TensorView* const* ws, float* const* ys,
                               int count, bool gate_up) {
  if (gate_up && ws[1]->rows() != ws[0]->rows()) return false;
  const StagedWeights kind = staged_weights(in, ws, count);
  if (kind == StagedWeights::kFp8) return impl_->fp8->norm_gemv(in, ws, ys, count, gate_up);
  if (kind != StagedWeights::kBf16) return false;
  const auto timed = impl_->profile->time("norm_gemv");
  if (gate_up) {
    gemv_gate_up_silu(matrix(*ws[0]), matrix(*ws[1]), in.dim, ws[0]->rows(), in.x, 1, ys[0],
                      impl_->stream, in.w, in.eps);
    return true;
  }
  GemvSegments segs = gemv_segments(ws, ys, count);
  segs.norm_w = in.w;
  segs.norm_eps = in.eps;
  gemv_bf16_segments(segs, in.dim, in.x, 1, impl_->stream);
  return true;
}

bool CudaBackend::norm_qkv_rope(const NormIn& in, const TensorView* const* ws, float* const* ys,
                                const QkvRope& r) {
  const int hd = r.rope.head_dim;
  if (!impl_->qkv_rope || in.rows != 1 || hd % 2 != 0 || hd > kMaxRopeHeadDim ||
      ws[0]->rows() != int64_t{r.n_heads} * hd || ws[1]->rows() != int64_t{r.n_kv_heads} * hd ||
      ws[2]->rows() != ws[1]->rows()) {
    return false;
  }
  const StagedWeights kind = staged_weights(in, ws, 3);
  if (kind == StagedWeights::kNone) return false;
  const GemvRope rope{step_array(r.positions),
                      step_array(r.slots),
                      impl_->rope_frequencies(r.rope),
                      kv_pool<void>(r.kv.k, r.kv),
                      kv_pool<void>(r.kv.v, r.kv),
                      hd,
                      r.rope.style == RopeStyle::kNeox,
                      impl_->options.fp8_kv};
  if (kind == StagedWeights::kFp8) return impl_->fp8->norm_qkv_rope(in, ws, ys, rope);
  const auto timed = impl_->profile->time("norm_qkv_rope");
  GemvSegments segs = gemv_segments(ws, ys, 3);
  segs.norm_w = in.w;
  segs.norm_eps = in.eps;
  gemv_bf16_qkv_rope(segs, rope, in.dim, in.x, impl_->stream);
  return true;
}

void CudaBackend::down_projection(const DenseMlp& m, int64_t n_tokens, float* y, float* scratch) {
  if (m.add_to_y) {
    matmul_add(*m.down, m.gate_out, n_tokens, y, scratch);
  } else {
    matmul(*m.down, m.gate_out, n_tokens, y);
  }
}

GemvSegments CudaBackend::gemv_segments(const TensorView* const* ws, float* const* ys,
                                        int count) const {
  GemvSegments segs{};
  segs.count = count;
  for (int i = 0; i < count; ++i) {
    segs.w[i] = matrix(*ws[i]);
    segs.y[i] = ys[i];
    segs.n[i] = ws[i]->rows();
  }
  return segs;
}

void CudaBackend::gemm_on_bf16_input(const TensorView& w, int64_t n_tokens, float* y) {
  if (QuantLinear::is_quant(w)) {
    impl_->quant->gemm(w, impl_->x_bf16, n_tokens, y);
    return;
  }
  impl_->gemm->bf16(matrix(w), w.ne[0], w.rows(), impl_->x_bf16, n_tokens, y);
}

namespace {

// Matrices sharing an input run as one GEMM (then split by columns) up to this many tokens: on an
// H200 at the 8B shape one Q/K/V GEMM took 17-38 us against 29-47 us for three at 16-512 tokens,
// and the gain fell below the split's copy by 1,024 (bench_cuda --gemm-only).
constexpr int64_t kFusedGemmMaxTokens = 512;

// Whether BF16 matrices sharing a row length lie end to end in one allocation, in order (the
// WeightStore places a layer's Q, K and V so: weight_set.h's adjacent runs).
bool end_to_end(const TensorView* const* ws, int count) {
  for (int i = 1; i < count; ++i) {
    const TensorView& a = *ws[i - 1];
    const TensorView& b = *ws[i];
    if (a.dtype != DType::BF16 || b.dtype != DType::BF16 || a.ne[0] != b.ne[0] ||
        b.data != static_cast<const uint16_t*>(a.data) + a.numel()) {
      return false;
    }
  }
  return count > 1;
}

}  // namespace

void CudaBackend::matmul_shared_input(const TensorView* const* ws, float* const* ys, int count,
                                      const float* x, int64_t n_tokens) {
  const auto timed = impl_->profile->time("matmul_shared");
  if (impl_->fp8 && impl_->fp8->matmul_shared_input(ws, ys, count, x, n_tokens)) {
    return;
  }
  if (impl_->quant && impl_->quant->matmul_shared_input(ws, ys, count, x, n_tokens)) return;
  const int64_t k = ws[0]->ne[0];
  bool same_k = count <= kGemvMaxSegments, any_quant = false;
  for (int i = 0; i < count; ++i) {
    same_k = same_k && ws[i]->ne[0] == k;
    any_quant = any_quant || QuantLinear::is_quant(*ws[i]);
  }
  if (any_quant && gemv_fits(k, n_tokens)) same_k = false;  // a mix: each by its own kernel
  if (same_k && gemv_fits(k, n_tokens)) {  // decode batches: one launch for all of them
    gemv_bf16_segments(gemv_segments(ws, ys, count), k, x, n_tokens, impl_->stream);
    return;
  }
  if (!same_k) {
    for (int i = 0; i < count; ++i) matmul(*ws[i], x, n_tokens, ys[i]);
    return;
  }
  impl_->reserve_bf16(n_tokens * k);  // one bf16 copy of the input for every GEMM
  cuda::to_bf16(x, n_tokens * k, impl_->x_bf16, impl_->stream);
  gemms_on_bf16_input(ws, ys, count, n_tokens);
}

void CudaBackend::gemms_on_bf16_input(const TensorView* const* ws, float* const* ys, int count,
                                      int64_t n_tokens) {
  const int64_t k = ws[0]->ne[0];
  if (impl_->fused_qkv && n_tokens <= kFusedGemmMaxTokens && end_to_end(ws, count)) {
    int64_t total = 0;
    for (int i = 0; i < count; ++i) total += ws[i]->rows();
    // One GEMM, then split by columns.
    if (float* y = impl_->fused_output(n_tokens * total, kFusedGemmMaxTokens * total)) {
      impl_->gemm->bf16(matrix(*ws[0]), k, total, impl_->x_bf16, n_tokens, y);
      int64_t col = 0;
      for (int i = 0; i < count; ++i) {
        const size_t width = static_cast<size_t>(ws[i]->rows()) * sizeof(float);
        SHARDLM_CUDA_CHECK(cudaMemcpy2DAsync(ys[i], width, y + col, total * sizeof(float), width,
                                             n_tokens, cudaMemcpyDeviceToDevice, impl_->stream));
        col += ws[i]->rows();
      }
      return;
    }
  }
  for (int i = 0; i < count; ++i) gemm_on_bf16_input(*ws[i], n_tokens, ys[i]);
}

bool CudaBackend::bf16_handoff(const TensorView* const* ws, int count, int64_t rows) const {
  if (!impl_->bf16_handoff) return false;
  for (int i = 0; i < count; ++i) {
    if (ws[i]->dtype != DType::BF16 || ws[i]->ne[0] != ws[0]->ne[0]) return false;
  }
  return !gemv_fits(ws[0]->ne[0], rows);
}

void CudaBackend::norm_to_bf16(const NormIn& in) {
  impl_->reserve_bf16(in.rows * in.dim);
  if (in.residual) {
    cuda::add_rms_norm(in.x, in.residual, in.w, in.rows, in.dim, in.eps, nullptr, impl_->stream,
                       impl_->x_bf16);
  } else {
    cuda::rms_norm(in.x, in.w, in.rows, in.dim, in.eps, nullptr, impl_->stream, impl_->x_bf16);
  }
}

void CudaBackend::norm_matmul(const NormIn& in, const TensorView* const* ws, float* const* ys,
                              int count) {
  if (norm_in_gemv(in, ws, ys, count, false)) return;
  if (impl_->fp8 && impl_->bf16_handoff && impl_->fp8->norm_matmul(in, ws, ys, count)) return;
  if (!bf16_handoff(ws, count, in.rows)) {
    Backend::norm_matmul(in, ws, ys, count);
    return;
  }
  const auto timed = impl_->profile->time("norm_matmul");
  norm_to_bf16(in);
  gemms_on_bf16_input(ws, ys, count, in.rows);
}

void CudaBackend::norm_mlp(const NormIn& in, const DenseMlp& m, float* y) {
  const TensorView* gate_up[] = {m.gate, m.up};
  float* gate_out[] = {m.gate_out};
  if (norm_in_gemv(in, gate_up, gate_out, 2, true)) {
    down_projection(m, in.rows, y, in.out);
    return;
  }
  if (impl_->fp8 && impl_->bf16_handoff && impl_->fp8->norm_mlp(in, m, y)) return;
  if (!bf16_handoff(gate_up, 2, in.rows) || !bf16_handoff(&m.down, 1, in.rows) ||
      m.up->rows() != m.gate->rows()) {
    Backend::norm_mlp(in, m, y);
    return;
  }
  const auto timed = impl_->profile->time("norm_mlp");
  const int64_t f = m.gate->rows(), k = m.gate->ne[0];
  impl_->reserve_bf16(in.rows * std::max(k, f));  // before the norm: growing drops the contents
  norm_to_bf16(in);
  // Gate and up as BF16 (in the first half of their fp32 buffers), then SiLU·up on them.
  if (impl_->bf16_gate_up && f % 8 == 0) {
    auto* g = reinterpret_cast<uint16_t*>(m.gate_out);
    auto* u = reinterpret_cast<uint16_t*>(m.up_out);
    impl_->gemm->bf16_out(matrix(*m.gate), k, f, impl_->x_bf16, in.rows, g);
    impl_->gemm->bf16_out(matrix(*m.up), k, f, impl_->x_bf16, in.rows, u);
    cuda::silu_mul_bf16_in(g, u, impl_->x_bf16, in.rows * f, impl_->stream);
  } else {
    float* ys[] = {m.gate_out, m.up_out};
    gemms_on_bf16_input(gate_up, ys, 2, in.rows);
    cuda::silu_mul_bf16(m.gate_out, m.up_out, impl_->x_bf16, in.rows * f, impl_->stream);
  }
  if (m.add_to_y) {
    impl_->gemm->bf16_add(matrix(*m.down), f, m.down->rows(), impl_->x_bf16, in.rows, y);
  } else {
    gemm_on_bf16_input(*m.down, in.rows, y);
  }
}

void CudaBackend::gate_up_silu(const TensorView& w_gate, const TensorView& w_up, const float* x,
                               int64_t n_tokens, float* gate, float* up) {
  if (impl_->fp8 && impl_->fp8->gate_up_silu(w_gate, w_up, x, n_tokens, gate)) {
    return;
  }
  if (impl_->quant && impl_->quant->gate_up_silu(w_gate, w_up, x, n_tokens, gate, up)) return;
  const int64_t k = w_gate.ne[0], n = w_gate.rows();
  if (QuantLinear::is_quant(w_gate) || QuantLinear::is_quant(w_up) || w_up.ne[0] != k ||
      w_up.rows() != n || !gemv_fits(k, n_tokens)) {
    Backend::gate_up_silu(w_gate, w_up, x, n_tokens, gate, up);  // GEMMs, then silu_mul
    return;
  }
  const auto timed = impl_->profile->time("gate_up_silu");
  gemv_gate_up_silu(matrix(w_gate), matrix(w_up), k, n, x, n_tokens, gate, impl_->stream);
}

}  // namespace shardlm::cuda
