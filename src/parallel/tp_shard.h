// Tensor-parallel shards of a loaded model, every slice a zero-copy view of the mapped file: rank r
// of tp keeps heads [r*h/tp, (r+1)*h/tp) of Q, K, V, rows [r*f/tp, ...) of FFN gate and up, output
// rows [r*d/tp, ...) of O and down (each expert's alike in a mixture of experts), and rows [r*V/tp,
// ...) of the output projection (vocab-parallel). The embedding lookup reads the mapped table
// directly (only looked-up rows are paged in). The forward gathers the heads' and FFN outputs
// before O and down and the d/tp output slices after them (Transformer::set_tensor_parallel), so
// every output is computed over its full input exactly as on one rank: greedy results equal a
// single process bit for bit.
#pragma once

#include <memory>

#include "model/model.h"

namespace shardlm::parallel {

// Throws Error when tp does not divide the heads, FFN width, hidden size or vocabulary, or neither
// divides nor is a multiple of the KV heads (then each rank keeps a copy of the KV head it needs).
// With expert_parallel, tp must divide the experts instead of their widths.
void check_tp_shardable(const ModelConfig& c, int tp, const ModelWeights& w,
                        bool expert_parallel = false);

// The shard's config has n_heads/tp, max(1, n_kv_heads/tp) and ffn_dim/tp (d_model and vocab_size
// stay).
// `full` must outlive the shard.
// With expert_parallel (--enable-expert-parallel) a mixture of experts is sharded by expert: rank r
// holds experts [r*E/tp, (r+1)*E/tp) whole (and the shared expert whole) instead of 1/tp of each.
std::unique_ptr<Model> shard_model(const Model& full, int tp_rank, int tp,
                                   bool expert_parallel = false);

}  // namespace shardlm::parallel
