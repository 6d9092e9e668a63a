// Transformer::forward: embedding -> n_layers x (attention block, MLP block) -> final norm ->
// output projection for the requested rows.
#include "model/transformer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/rope_config.h"
#include "model/weight_set_of.h"

namespace shardlm {

namespace {

// The weights layers [first, last) use: their layers, the embedding when first is 0 and the
// output projection (and final norm) when last is the last layer; the rest left empty.
ModelWeights stage_weights(const ModelWeights& w, int first, int last) {
  ModelWeights s;
  if (first == 0) s.tok_embd = w.tok_embd;
  if (last == static_cast<int>(w.layers.size())) {
    s.output = w.output;
    s.output_norm = w.output_norm;
  }
  s.layers.assign(w.layers.begin() + first, w.layers.begin() + last);
  return s;
}

}  // namespace

Transformer::Transformer(const Model& model, Backend& backend, KvCache& kv,
                         int64_t max_batch_tokens, int first_layer, int last_layer,
                         const BackendWeights* prepared)
    : c_(model.config),
      be_(backend),
      kv_(kv),
      max_tokens_(max_batch_tokens),
      first_cached_layer_(first_layer) {
  const auto T = static_cast<size_t>(max_batch_tokens);
  buf_.x = be_.alloc_floats(T * c_.d_model);
  buf_.xn = be_.alloc_floats(T * c_.d_model);
  buf_.q = be_.alloc_floats(T * c_.q_dim());
  buf_.k = be_.alloc_floats(T * c_.kv_dim());  // MLA: each token's latent + rope key
  buf_.v = be_.alloc_floats(T * std::max(c_.kv_dim(), c_.q_lora_rank));  // MLA: the q bottleneck
  buf_.attn = be_.alloc_floats(T * std::max({c_.q_dim(), c_.d_model, c_.attn_out_dim()}));
  buf_.gate = be_.alloc_floats(T * c_.ffn_dim);
  buf_.up = be_.alloc_floats(T * c_.ffn_dim);
  buf_.out_rows = be_.alloc_floats(T * c_.d_model);
  if (c_.is_moe()) buf_.moe_out = be_.alloc_floats(T * c_.d_model);
  if (!be_.host_memory()) {
    logits_chunk_ = std::min<int64_t>(max_batch_tokens, 256);
    logits_dev_ = be_.alloc_floats(static_cast<size_t>(logits_chunk_ * model.weights.output.ne[1]));
  }
  const int last = last_layer < 0 ? c_.n_layers : last_layer;
  if (prepared) {
    w_ = {stage_weights(prepared->weights, first_layer, last), prepared->memory};
  } else {
    w_ = prepare_model_weights(be_, c_, stage_weights(model.weights, first_layer, last));
  }
  rope_ = rope_params(c_);
  attn_params_ = {c_.n_heads,        c_.n_kv_heads,
                  c_.head_dim,       kv.shape().block_size,
                  c_.sliding_window, 1.f / std::sqrt(static_cast<float>(c_.head_dim))};
  if (c_.is_mla()) {
    // Every head attends over the one cached latent row per token (the absorbed form); the scale
    // stays a query head's (nope + rope), with deepseek's YaRN mscale.
    attn_params_.n_kv_heads = 1;
    attn_params_.head_dim = c_.kv_dim();
    attn_params_.sliding_window = 0;
    attn_params_.scale *= c_.attn_scale_mul;
  }
}

void Transformer::set_tensor_parallel(int tp, GatherCols gather, AllReduce all_reduce) {
  tp_ = tp;
  gather_ = std::move(gather);
  all_reduce_ = std::move(all_reduce);
  if (all_reduce_) return;  // Megatron: O and down write their partial sums in place
  const auto T = static_cast<size_t>(max_tokens_);
  const auto widest =
      static_cast<size_t>(std::max({c_.q_dim(), c_.ffn_dim, c_.attn_out_dim()})) * tp;
  tp_in_ = be_.alloc_floats(T * widest);
  tp_out_ = be_.alloc_floats(T * c_.d_model);
}

void Transformer::matmul_gathered(const TensorView& w, const float* x, int64_t n, int64_t full_cols,
                                  float* out) {
  if (tp_ == 1 || all_reduce_) {
    be_.matmul(w, x, n, out);  // Megatron: this rank's input columns, a partial sum
    if (all_reduce_) all_reduce_(out, n * c_.d_model);
    return;
  }
  gather_(x, n, full_cols / tp_, tp_in_);  // this rank's heads / FFN columns -> all of them
  be_.matmul(w, tp_in_, n, tp_out_);       // this rank's d_model / tp output rows
  gather_(tp_out_, n, c_.d_model / tp_, out);
}

void Transformer::qk_norm(float* x, const float* w, int64_t n, int heads) {
  be_.rms_norm(x, w, n * heads, c_.head_dim, c_.norm_eps, x);
}

// Multi-head latent attention: the query (through its q_lora bottleneck, whose norm uses
// deepseek's fixed 1e-6), each token's latent + rope key, then the backend's MLA op writes the
// cache and attends; the O projection as for ordinary attention.
void Transformer::mla_block(const LayerWeights& L, int il) {
  const int64_t n = step_.positions.n;
  if (L.wq_a.data) {
    be_.matmul(L.wq_a, buf_.xn, n, buf_.v);
    be_.rms_norm(buf_.v, L.q_a_norm, n, c_.q_lora_rank, 1e-6f, buf_.v);
    be_.matmul(L.wq_b, buf_.v, n, buf_.q);
  } else {
    be_.matmul(L.wq, buf_.xn, n, buf_.q);
  }
  be_.matmul(L.wkv_a, buf_.xn, n, buf_.k);
  const KvLayerView kv = kv_.layer(il - first_cached_layer_);
  be_.mla_attention(L.mla, buf_.q, buf_.k, step_.positions, step_.slots, n, rope_, kv, step_.seqs,
                    attn_params_, buf_.attn);
}

// One rank adds the O projection to x itself where the backend adds in the matmul's epilogue;
// otherwise (and on tensor-parallel ranks) it is left in xn for the MLP's norm to add.
const float* Transformer::attention_out(const TensorView& wo, int64_t n, int64_t full_cols) {
  if (tp_ == 1 && be_.adds_in_epilogue(wo, n)) {
    be_.matmul_add(wo, buf_.attn, n, buf_.x, buf_.xn);
    return nullptr;
  }
  matmul_gathered(wo, buf_.attn, n, full_cols, buf_.xn);
  return buf_.xn;
}

const float* Transformer::attention_block(const ForwardBatch& b, int il, const float* residual) {
  const LayerWeights& L = layer(il);
  const int64_t n = b.size();
  const Backend::NormIn in{buf_.x, residual, L.attn_norm, n, c_.d_model, c_.norm_eps, buf_.xn};
  if (c_.is_mla()) {
    be_.norm(in);
    mla_block(L, il);
    return attention_out(L.wo, n, int64_t{c_.attn_out_dim()} * tp_);
  }
  const TensorView* qkv[] = {&L.wq, &L.wk, &L.wv};
  float* qkv_out[] = {buf_.q, buf_.k, buf_.v};
  const KvLayerView kv = kv_.layer(il - first_cached_layer_);
  const Backend::QkvRope rope{step_.positions, step_.slots, c_.n_heads, c_.n_kv_heads, rope_, kv};
  if (L.bq || L.q_norm || !be_.norm_qkv_rope(in, qkv, qkv_out, rope)) {
    be_.norm_matmul(in, qkv, qkv_out, 3);
    if (L.bq) {
      be_.add_bias(buf_.q, L.bq, n, c_.q_dim());
      be_.add_bias(buf_.k, L.bk, n, c_.kv_dim());
      be_.add_bias(buf_.v, L.bv, n, c_.kv_dim());
    }
    if (L.q_norm) {
      qk_norm(buf_.q, L.q_norm, n, c_.n_heads);
      qk_norm(buf_.k, L.k_norm, n, c_.n_kv_heads);
    }
    be_.rope_store_kv(buf_.q, buf_.k, buf_.v, step_.positions, step_.slots, n, c_.n_heads,
                      c_.n_kv_heads, rope_, kv);
  }
  be_.attention(buf_.q, kv, step_.seqs, attn_params_, buf_.attn);
  return attention_out(L.wo, n, int64_t{c_.q_dim()} * tp_);
}

const float* Transformer::mlp_block(const LayerWeights& L, int64_t n, const float* residual) {
  // The residual add (when O's output was left apart) and the MLP's norm: xn = rms_norm(x).
  const Backend::NormIn in{buf_.x, residual, L.ffn_norm, n, c_.d_model, c_.norm_eps, buf_.xn};
  if (!L.moe.empty()) {
    be_.norm(in);
    if (L.moe.partial_sum) {  // Megatron: this rank's partial sum, completed by one all-reduce
      be_.moe_ffn(L.moe, buf_.xn, n, buf_.moe_out, nullptr);
      all_reduce_(buf_.moe_out, n * c_.d_model);
    } else {  // exact: tensor-parallel ranks gather inside the op as mlp's matmuls do
      be_.moe_ffn(L.moe, buf_.xn, n, buf_.moe_out, L.moe.tp > 1 ? &gather_ : nullptr);
    }
    return buf_.moe_out;
  }
  if (tp_ == 1) {  // one rank: the whole MLP in one call (its output added to x, or left in xn)
    const bool add = be_.adds_in_epilogue(L.w_down, n);
    be_.norm_mlp(in, {&L.w_gate, &L.w_up, &L.w_down, buf_.gate, buf_.up, add},
                 add ? buf_.x : buf_.xn);
    return add ? nullptr : buf_.xn;
  }
  be_.norm(in);
  be_.gate_up_silu(L.w_gate, L.w_up, buf_.xn, n, buf_.gate, buf_.up);
  matmul_gathered(L.w_down, buf_.gate, n, int64_t{c_.ffn_dim} * tp_, buf_.xn);
  return buf_.xn;
}

void Transformer::begin(const ForwardBatch& b) {
  const int64_t n = b.size();
  if (n > max_tokens_) {
    fail("internal: batch of {} tokens exceeds the {} the runner was sized for", n, max_tokens_);
  }
  attn_seqs_.clear();
  for (const auto& s : b.seqs) {
    attn_seqs_.push_back({s.first_row, s.n_tokens, s.n_past, s.block_table.data()});
  }
  StepIndices ix;
  ix.tokens = b.tokens.data();
  ix.positions = b.positions.data();
  ix.slots = b.slots.data();
  ix.n_tokens = n;
  ix.logit_rows = b.logit_rows.data();
  ix.n_logit_rows = static_cast<int64_t>(b.logit_rows.size());
  ix.seqs = attn_seqs_.data();
  ix.n_seqs = static_cast<int>(attn_seqs_.size());
  ix.block_size = kv_.shape().block_size;
  step_ = be_.begin_step(ix);
}

void Transformer::hidden_to_host(int64_t n_tokens, float* dst) {
  be_.to_host(buf_.x, static_cast<size_t>(n_tokens * c_.d_model), dst);
}

void Transformer::hidden_from_host(const float* src, int64_t n_tokens) {
  be_.from_host(src, static_cast<size_t>(n_tokens * c_.d_model), buf_.x);
}

void Transformer::embed(const ForwardBatch& b) {
  be_.embedding(w_.weights.tok_embd, step_.tokens, b.size(), buf_.x);
}

// A block's output left apart is added to x by the next block's norm (one kernel for both), the
// last one's here; where the backend adds in the matmul's epilogue, one rank's dense blocks add
// theirs to x directly.
void Transformer::run_layers(const ForwardBatch& b, int first, int last) {
  const float* residual = nullptr;
  for (int il = first; il < last; ++il) {
    residual = attention_block(b, il, residual);
    residual = mlp_block(layer(il), b.size(), residual);
  }
  if (residual) be_.add(buf_.x, residual, b.size() * c_.d_model);
}

// Only the requested rows go through the final norm and the (large) output projection.
void Transformer::compute_logits(const ForwardBatch& b, float* logits) {
  gather_norm_rows(b);
  project_logits(static_cast<int64_t>(b.logit_rows.size()), logits);
}

void Transformer::gather_norm_rows(const ForwardBatch& b) {
  const auto n_out = static_cast<int64_t>(b.logit_rows.size());
  be_.gather_rows(buf_.x, step_.logit_rows, n_out, c_.d_model, buf_.out_rows);
  be_.rms_norm(buf_.out_rows, w_.weights.output_norm, n_out, c_.d_model, c_.norm_eps,
               buf_.out_rows);
}

void Transformer::project_logits(int64_t n_out, float* logits) {
  if (be_.host_memory()) {  // the CPU writes straight into the caller's buffer
    be_.matmul(w_.weights.output, buf_.out_rows, n_out, logits);
    return;
  }
  project_chunks(n_out, copy_to_host(logits));
}

void Transformer::project_chunks(int64_t n_out, const LogitChunk& consume) {
  for (int64_t r = 0; r < n_out; r += logits_chunk_) {
    const int64_t rows = std::min(logits_chunk_, n_out - r);
    be_.matmul(w_.weights.output, buf_.out_rows + r * c_.d_model, rows, logits_dev_);
    consume(logits_dev_, r, rows);
  }
}

Transformer::LogitChunk Transformer::copy_to_host(float* logits) {
  const int64_t vocab = w_.weights.output.ne[1];
  return [this, logits, vocab](float* dev, int64_t first, int64_t rows) {
    be_.to_host(dev, static_cast<size_t>(rows * vocab), logits + first * vocab);
  };
}

GraphKey Transformer::graph_key(const ForwardBatch& b) const {
  GraphKey key;
  if (be_.host_memory() || tp_ > 1 || first_cached_layer_ != 0) return key;
  const auto n_out = static_cast<int64_t>(b.logit_rows.size());
  if (n_out == 0 || n_out > logits_chunk_ || b.size() != static_cast<int64_t>(b.seqs.size())) {
    return key;
  }
  key.owner = this;
  key.n_tokens = b.size();
  key.n_logit_rows = n_out;
  key.n_seqs = static_cast<int>(b.seqs.size());
  return key;
}

// The whole step as one graph: the first step of a shape runs op by op, the second is captured,
// every later one replayed. Only what becomes of the logits (a copy to the host, or sampling,
// whose settings change every step) stays outside.
bool Transformer::forward_graph(const ForwardBatch& b, const LogitChunk& consume) {
  const GraphKey key = graph_key(b);
  if (key.n_tokens == 0) return false;
  if (!be_.graph_replay(key)) {
    if (!be_.graph_capture_begin(key)) return false;
    embed(b);
    run_layers(b, 0, c_.n_layers);
    gather_norm_rows(b);
    be_.matmul(w_.weights.output, buf_.out_rows, key.n_logit_rows, logits_dev_);
    be_.graph_capture_end(key);
    if (!be_.graph_replay(key)) fail("internal: a captured step graph could not be replayed");
  }
  consume(logits_dev_, 0, key.n_logit_rows);
  return true;
}

void Transformer::forward(const ForwardBatch& b, float* logits) {
  if (b.size() == 0) return;
  begin(b);
  if (!be_.host_memory() && forward_graph(b, copy_to_host(logits))) return;
  embed(b);
  run_layers(b, 0, c_.n_layers);
  compute_logits(b, logits);
}

void Transformer::forward_sampled(const ForwardBatch& b, const RowSampling* params, int32_t* tokens,
                                  const std::function<void()>& complete_rows) {
  if (be_.host_memory()) fail("internal: forward_sampled is for backends with device memory");
  if (b.size() == 0) return;
  const int64_t vocab = w_.weights.output.ne[1];
  bool completed = !complete_rows;
  const LogitChunk sample = [&](float* dev, int64_t first, int64_t rows) {
    if (!completed) complete_rows(), completed = true;  // the forward is queued: overlap it
    be_.sample(dev, rows, vocab, params + first, tokens + first, nullptr);
  };
  begin(b);
  if (forward_graph(b, sample)) return;
  embed(b);
  run_layers(b, 0, c_.n_layers);
  gather_norm_rows(b);
  project_chunks(static_cast<int64_t>(b.logit_rows.size()), sample);
}

}  // namespace shardlm
