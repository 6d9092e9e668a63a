// The weights of a llama-style decoder, bound by canonical (GGUF) tensor names and checked against
// the config. Matrices stay in their file format (TensorView into the mapping); small vectors
// (norms, biases) are converted to fp32 once at load.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "backend/mla.h"
#include "backend/moe.h"
#include "core/tensor.h"
#include "model/model_config.h"

namespace shardlm {

struct LayerWeights {
  const float* attn_norm = nullptr;  // [d_model]
  TensorView wq, wk, wv, wo;         // wq: ne = [d_model, q_dim]; wk/wv: [d_model, kv_dim];
                                     // wo: [q_dim, d_model]
  const float* bq = nullptr;         // [q_dim] (qwen2)
  const float* bk = nullptr;         // [kv_dim]
  const float* bv = nullptr;         // [kv_dim]
  const float* q_norm = nullptr;     // [head_dim] (qwen3)
  const float* k_norm = nullptr;     // [head_dim]
  const float* ffn_norm = nullptr;   // [d_model]
  TensorView w_gate, w_up;           // [d_model, ffn_dim]; no data in a mixture-of-experts layer
  TensorView w_down;                 // [ffn_dim, d_model]
  MoeFfnWeights moe;                 // a mixture-of-experts layer's FFN (empty in a dense layer)
  // Multi-head latent attention (MLA models; wk/wv have no data): wq is the query projection when
  // there is no q_lora_rank, else wq_a -> q_a_norm -> wq_b; wkv_a gives each token's latent and
  // rope key; wo takes n_heads * v_head_dim.
  TensorView wq_a;                  // [d_model, q_lora]
  const float* q_a_norm = nullptr;  // [q_lora]
  TensorView wq_b;                  // [q_lora, n_heads * (nope + rope)]
  TensorView wkv_a;                 // [d_model, kv_lora + rope]
  MlaWeights mla;
};

// Calls fn(const TensorView&) on each of a layer's matrices: Q, K, V, O (or MLA's projections and
// per-head up-projections), then the dense FFN's gate, up, down, or the router, each expert's
// gate, up, down and the shared expert's.
template <typename Fn>
void for_each_layer_matrix(const LayerWeights& l, Fn fn) {
  for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.wq_a, &l.wq_b, &l.wkv_a}) {
    if (t->data) fn(*t);
  }
  for (const auto& t : l.mla.k_b) fn(t);
  for (const auto& t : l.mla.v_b) fn(t);
  if (l.moe.empty()) {
    for (const TensorView* t : {&l.w_gate, &l.w_up, &l.w_down}) fn(*t);
    return;
  }
  const MoeFfnWeights& m = l.moe;
  fn(m.router);
  for (int e = 0; e < m.n_local(); ++e) {
    fn(m.gate[static_cast<size_t>(e)]);
    fn(m.up[static_cast<size_t>(e)]);
    fn(m.down[static_cast<size_t>(e)]);
  }
  if (!m.has_shared()) return;
  for (const TensorView* t : {&m.shared_gate, &m.shared_up, &m.shared_down, &m.shared_router}) {
    if (t->data) fn(*t);
  }
}

struct ModelWeights {
  TensorView tok_embd;                 // [d_model, vocab]
  const float* output_norm = nullptr;  // [d_model]
  TensorView output;                   // [d_model, vocab]; the embedding when tied
  std::vector<LayerWeights> layers;
};

// Looks a tensor up by canonical name; nullptr when absent.
using TensorLookup = std::function<const TensorView*(const std::string& name)>;

// Binds and validates every weight. `owned` receives fp32 copies of vectors; `source` names the
// model in error messages. Sets config.tied_embeddings when output.weight is absent.
ModelWeights bind_weights(ModelConfig& config, const TensorLookup& lookup,
                          std::deque<std::vector<float>>& owned, const std::string& source);

}  // namespace shardlm
