// weight_set_of: ModelWeights flattened for a device upload.
#include "model/weight_set_of.h"

namespace shardlm {

WeightSet weight_set_of(const ModelConfig& c, const ModelWeights& w) {
  WeightSet s;
  s.matrices = {w.tok_embd, w.output};
  s.vectors.push_back({w.output_norm, w.output.ne[0]});
  for (const LayerWeights& L : w.layers) {
    // Attention (or MLA's projections and per-head up-projections), then the dense FFN or the
    // router, experts and shared expert.
    for_each_layer_matrix(L, [&s](const TensorView& m) { s.matrices.push_back(m); });
    s.vectors.insert(s.vectors.end(), {{L.attn_norm, c.d_model},
                                       {L.ffn_norm, c.d_model},
                                       {L.bq, L.wq.ne[1]},
                                       {L.bk, L.wk.ne[1]},
                                       {L.bv, L.wv.ne[1]},
                                       {L.q_norm, c.head_dim},
                                       {L.k_norm, c.head_dim},
                                       {L.q_a_norm, c.q_lora_rank},
                                       {L.mla.kv_a_norm, c.kv_lora_rank},
                                       {L.moe.score_bias, c.n_experts}});
  }
  return s;
}

}  // namespace shardlm
