// The backend boundary: a small table of operations the model forward is written against. Every op
// has a CPU reference (backend/cpu/); other backends (CUDA) implement the same table and are tested
// against it. Pointers are backend memory (host memory for the CPU backend).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/mla.h"
#include "backend/moe.h"
#include "backend/rope_params.h"
#include "backend/sampling.h"
#include "backend/step_arrays.h"
#include "backend/weight_set.h"
#include "core/error.h"
#include "core/tensor.h"

namespace shardlm {
inline constexpr int kMaxHeadDim = 1024;
}

namespace shardlm {

// One sequence's slice of a batch for attention: its queries are rows [first_row, first_row +
// n_tokens) at positions [n_past, n_past + n_tokens); its keys/values for positions
// [0, n_past + n_tokens) are in the paged cache at the blocks listed in block_table.
struct AttentionSeq {
  int32_t first_row = 0;
  int32_t n_tokens = 0;
  int32_t n_past = 0;
  const int32_t* block_table = nullptr;
};

struct AttentionParams {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int block_size = 16;
  int sliding_window = 0;  // 0 = unlimited
  float scale = 1.f;
};

// One layer's paged key/value pool: [n_blocks][block_size][kv_dim] elements each, in the backend's
// KV format (Backend::kv_dtype: fp32 on the CPU, BF16 on CUDA) and memory. An MLA cache has one
// pool (v == k).
struct KvLayerView {
  void* k = nullptr;
  void* v = nullptr;
  DType dtype = DType::F32;
  MemSpace space = MemSpace::kHost;
  // The pools as fp32, the CPU reference's format (its ops check dtype first).
  float* k_f32() const { return static_cast<float*>(k); }
  float* v_f32() const { return static_cast<float*>(v); }
};

// The host integer arrays of one forward step (ForwardBatch's, and the attention sequences built
// from it), given to begin_step, which answers with the arrays the step's ops take.
struct StepIndices {
  const int32_t* tokens = nullptr;     // [n_tokens]
  const int32_t* positions = nullptr;  // [n_tokens]
  const int32_t* slots = nullptr;      // [n_tokens]
  int64_t n_tokens = 0;
  const int32_t* logit_rows = nullptr;  // [n_logit_rows]
  int64_t n_logit_rows = 0;
  const AttentionSeq* seqs = nullptr;  // [n_seqs], block tables in host memory
  int n_seqs = 0;
  int block_size = 16;  // of the KV cache: a sequence's table has ceil(positions / block_size)
};

// A forward step's shape, for device backends that record a step's ops once and replay them
// (CUDA graphs): steps with equal keys launch the same kernels on the same buffers, only the
// uploaded indices differ. `owner` tells apart the models (Transformers) sharing a backend.
struct GraphKey {
  const void* owner = nullptr;
  int64_t n_tokens = 0;
  int64_t n_logit_rows = 0;
  int n_seqs = 0;
  bool operator<(const GraphKey& o) const {
    if (owner != o.owner) return owner < o.owner;
    if (n_tokens != o.n_tokens) return n_tokens < o.n_tokens;
    if (n_logit_rows != o.n_logit_rows) return n_logit_rows < o.n_logit_rows;
    return n_seqs < o.n_seqs;
  }
};

// Contract: activations are backend memory (alloc_floats) and KV pools are KvLayerViews of
// alloc_kv memory; weights are the views prepare_weights returned (matrices as TensorViews with
// their dtype, shape and memory space; vectors as fp32 pointers into the same copies); integer
// arrays are the StepArrays begin_step returned for the current step. Nothing is looked up by
// address: an op checks the handle it is given (space, dtype, step) and refuses a wrong one.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // Uploads (and converts) every weight of `w`, at load, and returns the copies entry for entry.
  // Equal views in one set (a tied embedding and output) share one copy, and so does a view of
  // the first rows of another. A pipeline stage lists its layers' weights only. The CPU returns
  // the host views, reading the mapped file.
  virtual PreparedWeights prepare_weights(const WeightSet& w) { return {w, nullptr}; }
  // Starts a forward step: the step's integer arrays in the backend's memory (a device backend
  // copies them in one upload), valid until the next begin_step. Called once per step before any
  // op of that step.
  StepArrays begin_step(const StepIndices& s) { return upload_step(s, ++step_); }
  // Step graphs, between begin_step and to_host: graph_replay launches the ops recorded for key
  // and returns true, or returns false when none are; graph_capture_begin returns true when the
  // backend records the ops that follow (until graph_capture_end) instead of running them. A
  // backend without graphs (the CPU) always runs the ops.
  virtual bool graph_replay(const GraphKey& key) { return false; }
  virtual bool graph_capture_begin(const GraphKey& key) { return false; }
  virtual void graph_capture_end(const GraphKey& key) {}
  // Free and total bytes of the device's memory; false for a backend on host memory.
  virtual bool device_memory(size_t& free, size_t& total) const { return false; }
  // Free bytes of the device's memory when this backend had just started (its context made,
  // nothing of its own allocated), so free_at_start - free is what this process has allocated
  // since; false for a backend on host memory.
  virtual bool device_memory_at_start(size_t& free_at_start) const { return false; }
  // True when alloc_floats memory is host memory, so results can be written into host buffers.
  virtual bool host_memory() const { return true; }
  // Whether prepare_weights takes F8_E4M3 matrices in core/fp8.h's row layout (codes, then a
  // scale per row) and runs them in FP8: the CUDA backend with --quantization fp8. An FP8
  // checkpoint's matrices with a scale per row then come to it so (prepare_model_weights).
  virtual bool runs_fp8_rows() const { return false; }
  // Whether prepare_weights takes F8_E4M3_G128 matrices (core/fp8.h: each row's codes, then a
  // scale per 128 columns): the CPU backend. An FP8 checkpoint's matrices whose scales are constant
  // over each 128 columns of a row then come to it so, where they do not come as FP8 rows.
  virtual bool runs_fp8_groups() const { return false; }
  // Whether prepare_weights takes routed expert matrix w (an FP8 checkpoint's, its scales constant
  // over each 128 columns) as F8_E4M3_G128, NaN codes included, where runs_fp8_groups does not:
  // the CUDA backend, whose expert kernels decode those rows (cuda/moe_experts.cuh).
  virtual bool runs_fp8_group_expert(const TensorView& w) const { return false; }
  // The accelerator this backend runs on, the same string for the same physical device wherever
  // it is asked ("GPU-<uuid> (PCI 0000:1b:00.0)"); "" for a backend on host memory. A group uses
  // it to tell whether its ranks have a GPU each (NCCL) or share one.
  virtual std::string device_id() const { return ""; }
  // Copies n floats from backend memory to host memory, and back (plain copies on the CPU). to_host
  // returns once dst holds the data.
  virtual void to_host(const float* src, size_t n, float* dst) { std::copy(src, src + n, dst); }
  virtual void from_host(const float* src, size_t n, float* dst) { std::copy(src, src + n, dst); }

  // out[t] = table row ids[t] for the n ids, dequantised to fp32 (d = table.ne[0]).
  virtual void embedding(const TensorView& table, const IndexArray& ids, int64_t n, float* out) = 0;
  // out[r] = x[r] / rms(x[r]) * w, rows of dim floats. out may equal x.
  virtual void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                        float* out) = 0;
  // y[t][j] = sum_i w[j][i] * x[t][i]; w.ne = [k, n]; x: n_tokens x k; y: n_tokens x n.
  virtual void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) = 0;
  // y += x W^T (a projection added to the residual stream: O, down); scratch ([n_tokens][rows of
  // w]) may be overwritten. A device backend adds in the matmul's epilogue; the default runs
  // matmul into scratch and add.
  // Whether one rank's Transformer should add the O or down projection w to the residual stream
  // as it is made (matmul_add, DenseMlp::add_to_y) at this batch size, rather than leave it for
  // the next norm to add (add_rms_norm): where the backend adds in w's matmul epilogue and norms
  // inside the matmul that follows (the CUDA GEMV); the CPU keeps one pass for the add and the
  // norm.
  virtual bool adds_in_epilogue(const TensorView& w, int64_t n_tokens) const {
    (void)w;
    (void)n_tokens;
    return false;
  }
  virtual void matmul_add(const TensorView& w, const float* x, int64_t n_tokens, float* y,
                          float* scratch) {
    matmul(w, x, n_tokens, scratch);
    add(y, scratch, n_tokens * w.rows());
  }
  // ys[i] = x W_i^T for `count` weights sharing one input (Q/K/V, gate/up), each as matmul; a
  // device backend may run them as one kernel. The default calls matmul for each.
  virtual void matmul_shared_input(const TensorView* const* ws, float* const* ys, int count,
                                   const float* x, int64_t n_tokens) {
    for (int i = 0; i < count; ++i) matmul(*ws[i], x, n_tokens, ys[i]);
  }
  // gate = silu(x W_gate^T) * (x W_up^T), with `up` as scratch ([n_tokens][ffn] each); the
  // default runs matmul_shared_input and silu_mul.
  virtual void gate_up_silu(const TensorView& w_gate, const TensorView& w_up, const float* x,
                            int64_t n_tokens, float* gate, float* up) {
    const TensorView* ws[] = {&w_gate, &w_up};
    float* ys[] = {gate, up};
    matmul_shared_input(ws, ys, 2, x, n_tokens);
    silu_mul(gate, up, gate, n_tokens * w_gate.rows());
  }
  // rope on q (n_heads per row) and k (n_kv_heads), then k and v into the cache slots; the
  // default runs rope, rope and store_kv.
  virtual void rope_store_kv(float* q, float* k, const float* v, const IndexArray& positions,
                             const IndexArray& slots, int64_t n_tokens, int n_heads, int n_kv_heads,
                             const RopeParams& p, const KvLayerView& kv) {
    rope(q, positions, n_tokens, n_heads, p);
    rope(k, positions, n_tokens, n_kv_heads, p);
    store_kv(kv, k, v, slots, n_tokens, int64_t{n_kv_heads} * p.head_dim);
  }
  // x += y, then out = rms_norm(x) * w (the residual add and the next norm); the default runs
  // add and rms_norm.
  virtual void add_rms_norm(float* x, const float* y, const float* w, int64_t rows, int64_t dim,
                            float eps, float* out) {
    add(x, y, rows * dim);
    rms_norm(x, w, rows, dim, eps, out);
  }
  // A block's norm and the matrices it feeds, in one call, so that a device backend can give the
  // normed rows to its GEMMs in their input format (BF16) instead of converting them there:
  // x += in.residual (when given), out = rms_norm(x) * w; then ys[i] = out W_i^T (Q/K/V). out may
  // equal the residual, and on a device backend is left unwritten when the GEMMs took the rows
  // directly (callers read only ys). The default runs add_rms_norm or rms_norm, then
  // matmul_shared_input.
  struct NormIn {
    float* x;               // [rows][dim], the residual stream
    const float* residual;  // nullable: added to x first
    const float* w;         // [dim]
    int64_t rows, dim;
    float eps;
    float* out;  // [rows][dim]
  };
  virtual void norm_matmul(const NormIn& in, const TensorView* const* ws, float* const* ys,
                           int count) {
    norm(in);
    matmul_shared_input(ws, ys, count, in.out, in.rows);
  }
  // The dense SwiGLU MLP after its norm: y = (silu(xn W_gate^T) * (xn W_up^T)) W_down^T, xn as
  // norm_matmul's out, gate and up scratch ([rows][ffn] each; y may equal in.out). With add_to_y
  // the MLP's output is added to y instead (y = in.x: the residual stream; in.out is then
  // scratch). The default runs norm, gate_up_silu and matmul (matmul_add).
  struct DenseMlp {
    const TensorView *gate, *up, *down;
    float *gate_out, *up_out;
    bool add_to_y = false;
  };
  virtual void norm_mlp(const NormIn& in, const DenseMlp& m, float* y) {
    norm(in);
    gate_up_silu(*m.gate, *m.up, in.out, in.rows, m.gate_out, m.up_out);
    if (m.add_to_y) {
      matmul_add(*m.down, m.gate_out, in.rows, y, in.out);
    } else {
      matmul(*m.down, m.gate_out, in.rows, y);
    }
  }
  // A layer's Q, K and V (norm_matmul over ws = {wq, wk, wv} into ys = {q, k, v}) and then
  // rope_store_kv, in one pass where the backend has one (the CUDA GEMV at one token rotates Q and
  // K and stores K and V in its epilogue). Returns false, having run nothing, where it has none:
  // the default.
  struct QkvRope {
    const IndexArray& positions;
    const IndexArray& slots;
    int n_heads, n_kv_heads;
    const RopeParams& rope;
    const KvLayerView& kv;
  };
  virtual bool norm_qkv_rope(const NormIn& in, const TensorView* const* ws, float* const* ys,
                             const QkvRope& r) {
    (void)in;
    (void)ws;
    (void)ys;
    (void)r;
    return false;
  }
  // norm_matmul's first half: add_rms_norm where in.residual is given, else rms_norm.
  void norm(const NormIn& in) {
    if (in.residual) {
      add_rms_norm(in.x, in.residual, in.w, in.rows, in.dim, in.eps, in.out);
    } else {
      rms_norm(in.x, in.w, in.rows, in.dim, in.eps, in.out);
    }
  }
  // x[r] += b for each of rows rows of dim floats.
  virtual void add_bias(float* x, const float* b, int64_t rows, int64_t dim) = 0;
  // Rotates each head of x (n_tokens rows of n_heads * head_dim) by its token's position.
  virtual void rope(float* x, const IndexArray& positions, int64_t n_tokens, int n_heads,
                    const RopeParams& p) = 0;
  // Writes k/v rows (kv_dim floats each) of n_tokens tokens to cache slots (block * block_size +
  // offset).
  virtual void store_kv(const KvLayerView& kv, const float* k, const float* v,
                        const IndexArray& slots, int64_t n_tokens, int64_t kv_dim) = 0;
  // Causal attention with grouped-query heads over the paged cache. q, out: rows of
  // n_heads * head_dim.
  virtual void attention(const float* q, const KvLayerView& kv, const StepSeqs& seqs,
                         const AttentionParams& p, float* out) = 0;
  // out[i] = silu(gate[i]) * up[i].
  virtual void silu_mul(const float* gate, const float* up, float* out, int64_t n) = 0;
  // x[i] += y[i].
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // A mixture-of-experts FFN over n_tokens rows of x (d_model floats each): router logits ->
  // softmax -> the top_k experts (renormalised when w.norm_topk) -> each expert's SwiGLU FFN over
  // the tokens routed to it -> out[t] = sum of the weighted expert outputs (plus the shared expert
  // times its sigmoid gate). A token's output does not depend on the other tokens of the step.
  // out must not alias x. With w.tp > 1, tp_gather joins the ranks' expert hidden columns before
  // down and their output columns at the end, so out is the whole result on every rank; with
  // w.partial_sum (Megatron) out is this rank's partial sum for the caller to all-reduce. The CPU
  // reference is cpu::moe_ffn (backend/cpu/moe.h); a backend without it refuses MoE models at
  // start-up (make_backend).
  virtual void moe_ffn(const MoeFfnWeights& w, const float* x, int64_t n_tokens, float* out,
                       const GatherColsFn* tp_gather = nullptr) {
    fail("internal: the {} backend has no mixture-of-experts op", name());
  }
  // Expert load: the (token, expert) rows this backend's moe_ffn has run through its own experts
  // since start-up (every expert's under tensor parallelism, this rank's share under expert
  // parallelism). Read from any thread.
  virtual int64_t moe_expert_rows() const { return 0; }
  // Multi-head latent attention over n_tokens rows: q ([n_tokens][n_heads][nope + rope], the
  // query projection's output) and ckv ([n_tokens][kv_lora + rope], kv_a_proj_with_mqa's) ->
  // the latent normed, the rope parts rotated at `positions` (rope.head_dim = w.rope), each
  // token's [latent, rope key] row written to the cache slot (kv.k; one pool, no values), causal
  // attention of every head over the cached rows in the absorbed form (p: n_kv_heads 1, head_dim
  // kv_lora + rope; scores = ((q_nope W_kb) . latent + q_rope . k_rope) * p.scale), and each
  // head's latent output through its W_vb -> out
  // ([n_tokens][n_heads * v_head]). Equal to expanding every cached latent into per-head keys and
  // values (cpu::mla_attention_reference). A backend without it refuses MLA models (make_backend).
  virtual void mla_attention(const MlaWeights& w, const float* q, const float* ckv,
                             const IndexArray& positions, const IndexArray& slots, int64_t n_tokens,
                             const RopeParams& rope, const KvLayerView& kv, const StepSeqs& seqs,
                             const AttentionParams& p, float* out) {
    fail("internal: the {} backend has no multi-head latent attention op", name());
  }
  // dst[i] = src[rows[i]] for n rows of dim floats.
  virtual void gather_rows(const float* src, const IndexArray& rows, int64_t n, int64_t dim,
                           float* dst) = 0;
  // Samples one token from each of `rows` rows of vocab logits (backend memory; penalties are
  // applied in place) with params[r] (host memory, the meanings of backend/sampling.h), writing
  // tokens[r] and, when logprobs is not null, logprobs[r] (the token's log-probability under the
  // penalised row at temperature 1) to host memory; returns once they are written. The CPU
  // reference is cpu::sample_rows (backend/cpu/sample.h).
  virtual void sample(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
                      int32_t* tokens, float* logprobs) = 0;
  // Memory for activations (host memory for CPU).
  virtual float* alloc_floats(size_t n) = 0;
  // The buffers alloc_floats and alloc_kv made after a mark, freed together (the start-up
  // profile's temporary runner, engine/activation_profile.h); nothing may use them afterwards.
  virtual size_t allocation_mark() const { return 0; }
  virtual void free_allocations_since(size_t mark) {}
  // Bytes of one key or value element in this backend's KV pool, and memory for n of them.
  virtual DType kv_dtype() const { return DType::F32; }
  size_t kv_element_bytes() const { return row_bytes(kv_dtype(), 1); }
  virtual void* alloc_kv(size_t n) { return alloc_floats(n); }
  // The memory alloc_floats and alloc_kv return.
  MemSpace memory_space() const { return host_memory() ? MemSpace::kHost : MemSpace::kDevice; }

 protected:
  // begin_step's work: the arrays of step number `step`. The default wraps the host arrays.
  virtual StepArrays upload_step(const StepIndices& s, uint64_t step);
  // The data of an array of the current step in this backend's memory; fails on any other.
  const int32_t* step_array(const IndexArray& a) const;
  // The host list of the current step's attention sequences; fails on another step's.
  const AttentionSeq* step_seqs(const StepSeqs& s) const;
  // k and v of a pool in this backend's KV format; fails on another dtype or memory space.
  template <typename T>
  T* kv_pool(void* p, const KvLayerView& kv) const {
    check_kv(kv);
    return static_cast<T*>(p);
  }
  void check_kv(const KvLayerView& kv) const;
  // A prepared matrix in this backend's memory; fails on a host view on a device backend.
  void check_weight(const TensorView& w) const;
  uint64_t current_step() const { return step_; }

 private:
  uint64_t step_ = 0;
};

}  // namespace shardlm
