// Megatron-style tensor-parallel shards of a loaded model: rank r of tp keeps heads
// [r*h/tp, (r+1)*h/tp) of Q, K, V (column-parallel, zero-copy row slices of the mapped file), the
// matching input columns of O (row-parallel, copied), FFN gate/up rows and down columns likewise,
// and rows [r*V/tp, (r+1)*V/tp) of the output projection (vocab-parallel). The embedding lookup
// reads the mapped table directly (only looked-up rows are paged in). After O and down, the ranks
// sum their partial outputs with one all-reduce each.
#pragma once

#include <memory>

#include "model/model.h"

namespace shardlm::dist {

// Throws Error when tp does not divide the heads, KV heads, FFN width or vocabulary, or when a
// row-parallel slice does not fall on the weight format's block boundaries.
void check_tp_shardable(const ModelConfig& c, int tp, const ModelWeights& w);

// The shard's config has n_heads/tp, n_kv_heads/tp and ffn_dim/tp (d_model and vocab_size stay).
// `full` must outlive the shard.
std::unique_ptr<Model> shard_model(const Model& full, int tp_rank, int tp);

}  // namespace shardlm::dist
