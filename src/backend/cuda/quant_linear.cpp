// QuantLinear: the dispatch for GGUF matrices kept quantised on the GPU.
#include "backend/cuda/quant_linear.h"

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/quant_layout.h"
#include "backend/cuda/scratch.h"
#include "core/env_flag.h"
#include "core/error.h"

namespace shardlm::cuda {

QuantLinear::QuantLinear(cudaStream_t stream, Gemm& gemm, int64_t max_k)
    : stream_(stream), gemm_(gemm), max_k_(std::max<int64_t>(max_k, 32)) {
  const auto codes = static_cast<size_t>(kGemvQuantMaxTokens * max_k_);
  SHARDLM_CUDA_CHECK(cudaMalloc(&acts_.q, codes));
  SHARDLM_CUDA_CHECK(cudaMalloc(&acts_.d, codes / 32 * sizeof(float)));
  SHARDLM_CUDA_CHECK(cudaMalloc(&acts_.s, codes / 32 * sizeof(float)));
}

QuantLinear::~QuantLinear() {
  cudaFree(acts_.q);
  cudaFree(acts_.d);
  cudaFree(acts_.s);
  cudaFree(tile_);
}

void QuantLinear::check_width(int64_t k) const {
  if (k > max_k_)
    fail("internal: a quantised matmul's input is {} wide, its scratch {}", k, max_k_);
}

bool QuantLinear::keeps(const TensorView& w) {
  static const bool bf16 = env_flag("SHARDLM_CUDA_GGUF_BF16", false);
  if (bf16 || !quant_layout(w.dtype) || w.ne[0] % 32 != 0) return false;
  for (const char* dense :
       {".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight",
        ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"}) {
    if (w.name.ends_with(dense)) return true;
  }
  return w.name == "output.weight" || w.name == "token_embd.weight";
}

bool QuantLinear::is_quant(const TensorView& w) {
  return quant_layout(w.dtype).has_value();
}

QuantMatrix QuantLinear::parts(const TensorView& w) {
  const int64_t k = w.ne[0], n = w.rows();
  const QuantParts p = quant_parts(*quant_layout(w.dtype), w.data, n, k);
  return {w.dtype, p.codes, p.scales, p.offsets, k, n};
}

void QuantLinear::reserve_tiles(int64_t elems) {
  elems = std::min(elems, kTileElems);
  if (elems <= tile_elems_) return;
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  cudaFree(tile_);
  tile_ = nullptr;
  scratch_moved("quantised tile");  // graphs captured on the old tile are stale
  SHARDLM_CUDA_CHECK(cudaMalloc(&tile_, static_cast<size_t>(elems) * sizeof(uint16_t)));
  tile_elems_ = elems;
}

// The batch in chunks of up to kGemvQuantMaxTokens tokens: fn(first token, tokens) per chunk.
template <typename Fn>
void by_chunks(int64_t n_tokens, Fn&& fn) {
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kGemvQuantMaxTokens) {
    fn(t0, std::min<int64_t>(kGemvQuantMaxTokens, n_tokens - t0));
  }
}

bool QuantLinear::matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) {
  if (!is_quant(w) || n_tokens > kGemvMaxTokens) return false;
  const int64_t k = w.ne[0], n = w.rows();
  check_width(k);
  by_chunks(n_tokens, [&](int64_t t0, int64_t nt) {
    gemv_quant(parts(w), x + t0 * k, nt, y + t0 * n, acts_, stream_);
  });
  return true;
}

bool QuantLinear::matmul_shared_input(const TensorView* const* ws, float* const* ys, int count,
                                      const float* x, int64_t n_tokens) {
  if (n_tokens > kGemvMaxTokens) return false;
  bool one_launch = count <= kQuantMaxSegments;
  for (int i = 0; i < count; ++i) {
    if (!is_quant(*ws[i]) || ws[i]->ne[0] != ws[0]->ne[0]) return false;
    one_launch = one_launch && ws[i]->dtype == ws[0]->dtype;
  }
  const int64_t k = ws[0]->ne[0];
  check_width(k);
  by_chunks(n_tokens, [&](int64_t t0, int64_t nt) {
    if (!one_launch) {
      for (int i = 0; i < count; ++i) {
        gemv_quant(parts(*ws[i]), x + t0 * k, nt, ys[i] + t0 * ws[i]->rows(), acts_, stream_);
      }
      return;
    }
    QuantSegments segs{};
    segs.count = count;
    for (int i = 0; i < count; ++i)
      segs.w[i] = parts(*ws[i]), segs.y[i] = ys[i] + t0 * ws[i]->rows();
    gemv_quant_segments(segs, x + t0 * k, nt, acts_, stream_);
  });
  return true;
}

bool QuantLinear::gate_up_silu(const TensorView& w_gate, const TensorView& w_up, const float* x,
                               int64_t n_tokens, float* gate, float* up) {
  if (!is_quant(w_gate) || !is_quant(w_up) || n_tokens > kGemvMaxTokens ||
      w_gate.ne[0] != w_up.ne[0] || w_gate.rows() != w_up.rows()) {
    return false;
  }
  const int64_t k = w_gate.ne[0], n = w_gate.rows();
  if (w_gate.dtype == w_up.dtype) {  // one launch a chunk: a warp reads a gate row and its up row
    check_width(k);
    by_chunks(n_tokens, [&](int64_t t0, int64_t nt) {
      QuantSegments segs{};
      segs.w[0] = parts(w_gate), segs.w[1] = parts(w_up);
      segs.y[0] = gate + t0 * n, segs.y[1] = up + t0 * n;
      segs.count = 2;
      segs.gate_up = true;
      gemv_quant_segments(segs, x + t0 * k, nt, acts_, stream_);
    });
    return true;
  }
  const TensorView* ws[2] = {&w_gate, &w_up};
  float* ys[2] = {gate, up};
  matmul_shared_input(ws, ys, 2, x, n_tokens);
  silu_mul(gate, up, gate, n_tokens * n, stream_);
  return true;
}

void QuantLinear::gemm(const TensorView& w, const uint16_t* x_bf16, int64_t n_tokens, float* y) {
  const QuantMatrix m = parts(w);
  if (tile_elems_ < m.k) reserve_tiles(m.k * std::min<int64_t>(m.n, 1024));
  const int64_t chunk = std::min(m.n, tile_elems_ / m.k);
  for (int64_t r0 = 0; r0 < m.n; r0 += chunk) {
    const int64_t rows = std::min(chunk, m.n - r0);
    dequantize_rows_bf16(m, r0, rows, tile_, stream_);
    gemm_.bf16_into(tile_, m.k, rows, x_bf16, n_tokens, y + r0, m.n);
  }
}

void QuantLinear::embedding(const TensorView& table, const int32_t* ids, int64_t n, float* out) {
  gather_rows_quant(parts(table), ids, n, out, stream_);
}

}  // namespace shardlm::cuda
