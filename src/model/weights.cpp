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

LayerWeights bind_layer(Binder& b, const ModelConfig& c, int il) {
  auto n = [il](const char* suffix) { return fmt::format("blk.{}.{}", il, suffix); };
  LayerWeights l;
  l.attn_norm = b.vector(n("attn_norm.weight"), c.d_model);
  l.wq = b.matrix(n("attn_q.weight"), c.d_model, c.q_dim());
  l.wk = b.matrix(n("attn_k.weight"), c.d_model, c.kv_dim());
  l.wv = b.matrix(n("attn_v.weight"), c.d_model, c.kv_dim());
  l.wo = b.matrix(n("attn_output.weight"), c.q_dim(), c.d_model);
  l.bq = b.vector(n("attn_q.bias"), c.q_dim(), c.qkv_bias);
  l.bk = b.vector(n("attn_k.bias"), c.kv_dim(), c.qkv_bias);
  l.bv = b.vector(n("attn_v.bias"), c.kv_dim(), c.qkv_bias);
  l.q_norm = b.vector(n("attn_q_norm.weight"), c.head_dim, c.qk_norm);
  l.k_norm = b.vector(n("attn_k_norm.weight"), c.head_dim, c.qk_norm);
  l.ffn_norm = b.vector(n("ffn_norm.weight"), c.d_model);
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
  for (int il = 0; il < config.n_layers; ++il) w.layers.push_back(bind_layer(b, config, il));
  return w;
}

}  // namespace shardlm
