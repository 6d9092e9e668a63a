// weight_set_of and prepare_model_weights: one walk over ModelWeights lists the weights, and the
// same walk in the same order binds the backend's views back into their places.
#include "model/weight_set_of.h"

#include <type_traits>

#include "core/error.h"

namespace shardlm {

namespace {

// Calls mat(view) for every matrix slot and vec(pointer, n) for every fp32 vector slot of w, in a
// fixed order; W is ModelWeights or const ModelWeights.
template <typename W, typename Mat, typename Vec>
void walk_weights(const ModelConfig& c, W& w, Mat mat, Vec vec) {
  mat(w.tok_embd);
  mat(w.output);
  vec(w.output_norm, c.d_model);
  for (auto& L : w.layers) {
    for (auto* m :
         {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down, &L.wq_a, &L.wq_b, &L.wkv_a}) {
      mat(*m);
    }
    vec(L.attn_norm, c.d_model);
    vec(L.ffn_norm, c.d_model);
    vec(L.bq, L.wq.ne[1]);
    vec(L.bk, L.wk.ne[1]);
    vec(L.bv, L.wv.ne[1]);
    vec(L.q_norm, c.head_dim);
    vec(L.k_norm, c.head_dim);
    vec(L.q_a_norm, c.q_lora_rank);
    auto& moe = L.moe;
    for (auto* m :
         {&moe.router, &moe.shared_gate, &moe.shared_up, &moe.shared_down, &moe.shared_router}) {
      mat(*m);
    }
    for (auto* list : {&moe.gate, &moe.up, &moe.down, &L.mla.k_b, &L.mla.v_b}) {
      for (auto& m : *list) mat(m);
    }
    vec(moe.score_bias, moe.router.ne[1]);
    vec(L.mla.kv_a_norm, L.mla.kv_lora);
  }
}

}  // namespace

WeightSet weight_set_of(const ModelConfig& c, const ModelWeights& w) {
  WeightSet s;
  std::vector<size_t> qkv;  // indices of the current layer's Q, K and V, as they are listed
  const auto close_runs = [&] {
    if (qkv.size() == 3) s.adjacent.push_back(qkv);
    qkv.clear();
  };
  size_t layer = 0;  // the layer whose matrices the walk lists now (walk_weights' order)
  walk_weights(
      c, w,
      [&](const TensorView& m) {
        const size_t i = s.matrices.size();
        s.matrices.push_back(m);
        if (layer < w.layers.size() && &m == &w.layers[layer].wq) {  // a layer's first matrix
          close_runs();
          ++layer;
        }
        if (layer == 0) return;
        const auto& L = w.layers[layer - 1];
        if (&m == &L.wq || &m == &L.wk || &m == &L.wv) qkv.push_back(i);
      },
      [&](const float* p, int64_t n) {
        s.vectors.push_back({p, n, MemSpace::kHost});
      });
  close_runs();
  return s;
}

BackendWeights prepare_model_weights(Backend& backend, const ModelConfig& c,
                                     const ModelWeights& w) {
  const WeightSet host = weight_set_of(c, w);
  PreparedWeights prepared = backend.prepare_weights(host);
  const WeightSet& views = prepared.views;
  if (views.matrices.size() != host.matrices.size() ||
      views.vectors.size() != host.vectors.size()) {
    fail("internal: the {} backend prepared {} matrices and {} vectors of {} and {}",
         backend.name(), views.matrices.size(), views.vectors.size(), host.matrices.size(),
         host.vectors.size());
  }
  BackendWeights out{w, std::move(prepared.memory)};
  size_t im = 0, iv = 0;
  walk_weights(
      c, out.weights, [&](TensorView& m) { m = views.matrices[im++]; },
      [&](const float*& p, int64_t) { p = views.vectors[iv++].data; });
  return out;
}

}  // namespace shardlm
