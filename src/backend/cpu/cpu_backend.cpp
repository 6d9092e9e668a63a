// CpuBackend: forwards each op to its CPU kernel with the backend's pool and scratch.
#include "backend/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>

#include "backend/cpu/quant.h"
#include "backend/cpu/sample.h"
#include "core/env_flag.h"

namespace shardlm {

CpuBackendOptions CpuBackendOptions::for_model(const ModelShape& m, int threads,
                                               int64_t max_batch_tokens, int64_t max_context) {
  CpuBackendOptions o;
  o.threads = threads;
  o.max_batch_tokens = max_batch_tokens;
  o.max_matmul_k = m.max_matmul_k;
  o.max_context = max_context;
  o.head_dim = m.attention_dim;
  o.moe_experts = m.n_experts;
  o.moe_top_k = m.n_experts_used;
  o.d_model = m.d_model;
  o.moe_ffn = m.moe_ffn;
  o.moe_shared_ffn = m.moe_shared_ffn;
  return o;
}

CpuBackend::CpuBackend(const CpuBackendOptions& o)
    : pool_(o.threads > 0 ? o.threads : ThreadPool::default_threads()) {
  matmul_ws_.reserve(o.max_batch_tokens, o.max_matmul_k);
  attn_scratch_.reserve(pool_.size(), o.max_context, o.max_batch_tokens, o.head_dim);
  if (o.moe_experts > 0) {
    moe_scratch_.reserve(o.max_batch_tokens, o.moe_experts, o.moe_top_k, o.d_model, o.moe_ffn,
                         o.moe_shared_ffn);
  }
  // Our pool parallelises across heads and rows; OpenBLAS calls inside a slot stay single-threaded.
  openblas_set_num_threads(1);
}

void CpuBackend::embedding(const TensorView& table, const IndexArray& id_array, int64_t n,
                           float* out) {
  check_weight(table);
  const int32_t* ids = step_array(id_array);
  const int64_t d = table.ne[0];
  for (int64_t t = 0; t < n; ++t)
    cpu::dequantize_row(table.dtype, table.row(ids[t]), out + t * d, d);
}

void CpuBackend::rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                          float* out) {
  cpu::rms_norm(pool_, x, w, rows, dim, eps, out);
}

void CpuBackend::matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) {
  check_weight(w);
  cpu::matmul(w, x, n_tokens, y, pool_, matmul_ws_);
}

void CpuBackend::add_bias(float* x, const float* b, int64_t rows, int64_t dim) {
  cpu::add_bias(x, b, rows, dim);
}

void CpuBackend::rope(float* x, const IndexArray& positions, int64_t n_tokens, int n_heads,
                      const RopeParams& p) {
  cpu::rope(pool_, x, step_array(positions), n_tokens, n_heads, p);
}

void CpuBackend::store_kv(const KvLayerView& kv, const float* k, const float* v,
                          const IndexArray& slots, int64_t n_tokens, int64_t kv_dim) {
  check_kv(kv);
  cpu::store_kv(kv, k, v, step_array(slots), n_tokens, kv_dim);
}

void CpuBackend::attention(const float* q, const KvLayerView& kv, const StepSeqs& seqs,
                           const AttentionParams& p, float* out) {
  check_kv(kv);
  cpu::attention(pool_, attn_scratch_, q, kv, step_seqs(seqs), seqs.n, p, out);
}

void CpuBackend::silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  cpu::silu_mul(pool_, gate, up, out, n);
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
  cpu::add(pool_, x, y, n);
}

void CpuBackend::moe_ffn(const MoeFfnWeights& w, const float* x, int64_t n_tokens, float* out,
                         const GatherColsFn* tp_gather) {
  cpu::moe_ffn(pool_, matmul_ws_, moe_scratch_, w, x, n_tokens, out, tp_gather);
}

void CpuBackend::mla_attention(const MlaWeights& w, const float* q, const float* ckv,
                               const IndexArray& positions, const IndexArray& slots,
                               int64_t n_tokens, const RopeParams& rope, const KvLayerView& kv,
                               const StepSeqs& seqs, const AttentionParams& p, float* out) {
  check_kv(kv);
  cpu::mla_attention(pool_, matmul_ws_, attn_scratch_, mla_scratch_, w, q, ckv,
                     step_array(positions), step_array(slots), n_tokens, rope, kv, step_seqs(seqs),
                     seqs.n, p, out);
}

void CpuBackend::gather_rows(const float* src, const IndexArray& row_array, int64_t n, int64_t dim,
                             float* dst) {
  const int32_t* rows = step_array(row_array);
  for (int64_t i = 0; i < n; ++i)
    std::copy(src + rows[i] * dim, src + (rows[i] + 1) * dim, dst + i * dim);
}

void CpuBackend::sample(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
                        int32_t* tokens, float* logprobs) {
  cpu::sample_rows(logits, rows, vocab, params, tokens, logprobs);
}

float* CpuBackend::alloc_floats(size_t n) {
  return buffers_.emplace_back(n, 0.f).data();
}

void CpuBackend::free_allocations_since(size_t mark) {
  while (buffers_.size() > mark) buffers_.pop_back();
}

bool CpuBackend::runs_fp8_groups() const {
  return keeps_fp8_groups();
}

bool CpuBackend::keeps_fp8_groups() {
  return env_flag("SHARDLM_CPU_FP8_GROUPS", true);
}

}  // namespace shardlm
