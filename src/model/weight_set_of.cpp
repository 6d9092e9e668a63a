// weight_set_of: ModelWeights flattened for a device upload.
#include "model/weight_set_of.h"

namespace shardlm {

WeightSet weight_set_of(const ModelConfig& c, const ModelWeights& w) {
  WeightSet s;
  s.matrices = {w.tok_embd, w.output};
  s.vectors.push_back({w.output_norm, w.output.ne[0]});
  for (const LayerWeights& L : w.layers) {
    for (const TensorView* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      s.matrices.push_back(*m);
    }
    s.vectors.insert(s.vectors.end(), {{L.attn_norm, L.wq.ne[0]},
                                       {L.ffn_norm, L.w_gate.ne[0]},
                                       {L.bq, L.wq.ne[1]},
                                       {L.bk, L.wk.ne[1]},
                                       {L.bv, L.wv.ne[1]},
                                       {L.q_norm, c.head_dim},
                                       {L.k_norm, c.head_dim}});
  }
  return s;
}

}  // namespace shardlm
