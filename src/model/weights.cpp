// Weight binding: name lookup, shape checks against the config, fp32 conversion of vectors.
#include "model/weights.h"

#include <fmt/format.h>

#include "backend/cpu/quant.h"
#include "core/error.h"

namespace shardlm {

namespace {

class Binder {
 public:
  Binder(const TensorLookup& lookup, std::deque<std::vector<float>>& owned, const std::string& src)
      : lookup_(lookup), owned_(owned), source_(src) {}

  const TensorView* optional(const std::string& name) { return lookup_(name); }

  TensorView matrix(const std::string& name, int64_t cols, int64_t rows) {
    const TensorView* t = lookup_(name);
    if (!t)
      fail("'{}': missing tensor '{}'; the file is incomplete or not a supported model", source_,
           name);
    check_shape(*t, cols, rows);
    return *t;
  }

  // A [cols, rows, n] tensor (GGML order), checked.
  TensorView stacked(const std::string& name, int64_t cols, int64_t rows, int64_t n) {
    const TensorView* t = lookup_(name);
    if (!t) fail("'{}': missing tensor '{}'", source_, name);
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != n || t->ne[3] != 1) {
      fail(
          "'{}': tensor '{}' has shape {} but the model config expects [{}, {}, {}] (GGML order); "
          "the weights do not match config",
          source_, t->name, t->shape_str(), cols, rows, n);
    }
    return *t;
  }

  const float* vector(const std::string& name, int64_t n, bool required = true) {
    const TensorView* t = lookup_(name);
    if (!t) {
      if (required) fail("'{}': missing tensor '{}'", source_, name);
      return nullptr;
    }
    check_shape(*t, n, 1);
    auto& v = owned_.emplace_back(static_cast<size_t>(n));
    cpu::dequantize_row(t->dtype, t->data, v.data(), n);
    return v.data();
  }

 private:
  void check_shape(const TensorView& t, int64_t cols, int64_t rows) {
    if (t.dtype == DType::I32) {
      fail(
          "'{}': tensor '{}' has type I32, which is not a weight type; the file is corrupt or not "
          "a supported model",
          source_, t.name);
    }
    if (t.ne[0] != cols || t.rows() != rows) {
      fail(
          "'{}': tensor '{}' has shape {} but the model config expects [{}, {}] (GGML order: row "
          "length first); the weights do not match config",
          source_, t.name, t.shape_str(), cols, rows);
    }
  }

  const TensorLookup& lookup_;
  std::deque<std::vector<float>>& owned_;
  const std::string& source_;
};

// Expert e of a stacked [cols, rows, n_experts] tensor: a view of its rows.
TensorView expert_slice(const TensorView& t, int e) {
  TensorView s = t;
  s.name = fmt::format("{}[expert {}]", t.name, e);
  s.data = t.row(int64_t{e} * t.ne[1]);
  s.fp8_row0 = t.fp8_row0 + int64_t{e} * t.ne[1];
  s.ne = {t.ne[0], t.ne[1], 1, 1};
  s.n_dims = 2;
  return s;
}

// One kind of expert matrix ("ffn_gate", "ffn_up", "ffn_down") of every expert of layer il:
// llama.cpp's stacked blk.N.<kind>_exps.weight, else one blk.N.<kind>.E.weight per expert (Hugging
// Face files and older GGUF files).
std::vector<TensorView> bind_experts(Binder& b, const ModelConfig& c, int il,
                                     const std::string& kind, int64_t cols, int64_t rows,
                                     const std::string& source) {
  std::vector<TensorView> out;
  const std::string stacked_name = fmt::format("blk.{}.{}_exps.weight", il, kind);
  if (const TensorView* t = b.optional(stacked_name)) {
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != c.n_experts || t->ne[3] != 1) {
      fail(
          "'{}': tensor '{}' has shape {} but the model config expects [{}, {}, {}] ({} experts "
          "of [{}, {}], GGML order); the weights do not match config",
          source, t->name, t->shape_str(), cols, rows, c.n_experts, c.n_experts, cols, rows);
    }
    for (int e = 0; e < c.n_experts; ++e) out.push_back(expert_slice(*t, e));
    return out;
  }
  for (int e = 0; e < c.n_experts; ++e) {
    const std::string name = fmt::format("blk.{}.{}.{}.weight", il, kind, e);
    if (!b.optional(name)) {
      fail(
          "'{}': missing tensor '{}' (expert {} of {} in layer {}; no stacked '{}' either); the "
          "file is incomplete or not a supported model",
          source, name, e, c.n_experts, il, stacked_name);
    }
    out.push_back(b.matrix(name, cols, rows));
  }
  return out;
}

MoeFfnWeights bind_moe(Binder& b, const ModelConfig& c, int il, const std::string& source) {
  auto n = [il](const char* suffix) { return fmt::format("blk.{}.{}", il, suffix); };
  MoeFfnWeights m;
  const int64_t d = c.d_model, f = c.moe_ffn_dim, s = c.shared_ffn_dim;
  m.router = b.matrix(n("ffn_gate_inp.weight"), d, c.n_experts);
  m.gate = bind_experts(b, c, il, "ffn_gate", d, f, source);
  m.up = bind_experts(b, c, il, "ffn_up", d, f, source);
  m.down = bind_experts(b, c, il, "ffn_down", f, d, source);
  m.top_k = c.n_experts_used;
  m.norm_topk = c.norm_topk_prob;
  m.routing = c.moe_routing;
  if (c.moe_score_bias) m.score_bias = b.vector(n("exp_probs_b.bias"), c.n_experts);
  if (s > 0) {
    m.shared_gate = b.matrix(n("ffn_gate_shexp.weight"), d, s);
    m.shared_up = b.matrix(n("ffn_up_shexp.weight"), d, s);
    m.shared_down = b.matrix(n("ffn_down_shexp.weight"), s, d);
    if (c.shared_expert_gated) m.shared_router = b.matrix(n("ffn_gate_inp_shexp.weight"), d, 1);
  }
  return m;
}

// A view of `rows` rows of t from row `first` (one head's slice of a stacked matrix).
TensorView row_slice(const TensorView& t, int64_t first, int64_t rows, const std::string& what) {
  TensorView s = t;
  s.name = fmt::format("{}[{}]", t.name, what);
  s.data = t.row(first);
  s.fp8_row0 = t.fp8_row0 + first;
  s.ne = {t.ne[0], rows, 1, 1};
  s.n_dims = 2;
  return s;
}

// MLA's per-head up-projections: llama.cpp's attn_k_b ([nope, kv_lora, n_heads], already
// transposed for the absorbed form) and attn_v_b ([kv_lora, v_head, n_heads]), else Hugging Face's
// kv_b_proj ([kv_lora, n_heads * (nope + v_head)]): its value rows are viewed as they are, its key
// rows transposed once into fp32 copies.
void bind_mla_heads(Binder& b, const ModelConfig& c, int il, MlaWeights& m,
                    std::deque<std::vector<float>>& owned) {
  auto n = [il](const char* suffix) { return fmt::format("blk.{}.{}", il, suffix); };
  const int H = c.n_heads, nope = c.qk_nope_head_dim, L = c.kv_lora_rank, V = c.v_head_dim;
  if (b.optional(n("attn_k_b.weight"))) {
    const TensorView kb = b.stacked(n("attn_k_b.weight"), nope, L, H);
    const TensorView vb = b.stacked(n("attn_v_b.weight"), L, V, H);
    for (int h = 0; h < H; ++h) {
      const std::string what = fmt::format("head {}", h);
      m.k_b.push_back(row_slice(kb, int64_t{h} * L, L, what));
      m.v_b.push_back(row_slice(vb, int64_t{h} * V, V, what));
    }
    return;
  }
  const TensorView kvb = b.matrix(n("attn_kv_b.weight"), L, int64_t{H} * (nope + V));
  std::vector<float> rows(static_cast<size_t>(int64_t{nope} * L));
  for (int h = 0; h < H; ++h) {
    const int64_t first = int64_t{h} * (nope + V);
    for (int i = 0; i < nope; ++i) {
      cpu::dequantize_row(kvb.dtype, kvb.row(first + i), rows.data() + int64_t{i} * L, L);
    }
    auto& kt = owned.emplace_back(rows.size());  // [L][nope]: row l holds W_kb[:, l]
    for (int i = 0; i < nope; ++i) {
      for (int l = 0; l < L; ++l) kt[size_t(l) * nope + i] = rows[size_t(i) * L + l];
    }
    TensorView k;
    k.name = fmt::format("{}[head {} keys, transposed]", kvb.name, h);
    k.ne = {nope, L, 1, 1};
    k.n_dims = 2;
    k.data = kt.data();
    m.k_b.push_back(k);
    m.v_b.push_back(row_slice(kvb, first + nope, V, fmt::format("head {} values", h)));
  }
}

void bind_mla(Binder& b, const ModelConfig& c, int il, LayerWeights& l,
              std::deque<std::vector<float>>& owned) {
  auto n = [il](const char* suffix) { return fmt::format("blk.{}.{}", il, suffix); };
  const int64_t d = c.d_model, q = c.q_dim();
  if (c.q_lora_rank > 0) {
    l.wq_a = b.matrix(n("attn_q_a.weight"), d, c.q_lora_rank);
    l.q_a_norm = b.vector(n("attn_q_a_norm.weight"), c.q_lora_rank);
    l.wq_b = b.matrix(n("attn_q_b.weight"), c.q_lora_rank, q);
  } else {
    l.wq = b.matrix(n("attn_q.weight"), d, q);
  }
  l.wkv_a = b.matrix(n("attn_kv_a_mqa.weight"), d, c.kv_dim());
  MlaWeights& m = l.mla;
  m.n_heads = c.n_heads;
  m.nope = c.qk_nope_head_dim;
  m.rope = c.qk_rope_head_dim;
  m.kv_lora = c.kv_lora_rank;
  m.v_head = c.v_head_dim;
  m.kv_a_norm = b.vector(n("attn_kv_a_norm.weight"), c.kv_lora_rank);
  m.rope_factor = c.rope_attn_factor;
  bind_mla_heads(b, c, il, m, owned);
  l.wo = b.matrix(n("attn_output.weight"), c.attn_out_dim(), d);
}

void bind_attention(Binder& b, const ModelConfig& c, int il, LayerWeights& l) {
  auto n = [il](const char* suffix) { return fmt::format("blk.{}.{}", il, suffix); };
  l.wq = b.matrix(n("attn_q.weight"), c.d_model, c.q_dim());
  l.wk = b.matrix(n("attn_k.weight"), c.d_model, c.kv_dim());
  l.wv = b.matrix(n("attn_v.weight"), c.d_model, c.kv_dim());
  l.wo = b.matrix(n("attn_output.weight"), c.q_dim(), c.d_model);
  l.bq = b.vector(n("attn_q.bias"), c.q_dim(), c.qkv_bias);
  l.bk = b.vector(n("attn_k.bias"), c.kv_dim(), c.qkv_bias);
  l.bv = b.vector(n("attn_v.bias"), c.kv_dim(), c.qkv_bias);
  l.q_norm = b.vector(n("attn_q_norm.weight"), c.head_dim, c.qk_norm);
  l.k_norm = b.vector(n("attn_k_norm.weight"), c.head_dim, c.qk_norm);
}

LayerWeights bind_layer(Binder& b, const ModelConfig& c, int il, const std::string& source,
                        std::deque<std::vector<float>>& owned) {
  auto n = [il](const char* suffix) { return fmt::format("blk.{}.{}", il, suffix); };
  LayerWeights l;
  l.attn_norm = b.vector(n("attn_norm.weight"), c.d_model);
  l.ffn_norm = b.vector(n("ffn_norm.weight"), c.d_model);
  if (c.is_mla()) {
    bind_mla(b, c, il, l, owned);
  } else {
    bind_attention(b, c, il, l);
  }
  if (c.is_moe_layer(il)) {
    l.moe = bind_moe(b, c, il, source);
    return l;
  }
  l.w_gate = b.matrix(n("ffn_gate.weight"), c.d_model, c.ffn_dim);
  l.w_up = b.matrix(n("ffn_up.weight"), c.d_model, c.ffn_dim);
  l.w_down = b.matrix(n("ffn_down.weight"), c.ffn_dim, c.d_model);
  return l;
}

}  // namespace

ModelWeights bind_weights(ModelConfig& config, const TensorLookup& lookup,
                          std::deque<std::vector<float>>& owned, const std::string& source) {
  Binder b(lookup, owned, source);
  ModelWeights w;
  w.tok_embd = b.matrix("token_embd.weight", config.d_model, config.vocab_size);
  w.output_norm = b.vector("output_norm.weight", config.d_model);
  config.tied_embeddings = b.optional("output.weight") == nullptr;
  w.output = config.tied_embeddings ? w.tok_embd
                                    : b.matrix("output.weight", config.d_model, config.vocab_size);
  for (int il = 0; il < config.n_layers; ++il)
    w.layers.push_back(bind_layer(b, config, il, source, owned));
  return w;
}

}  // namespace shardlm
