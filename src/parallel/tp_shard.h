// Tensor-parallel shards of a loaded model. Rank r of tp keeps heads [r*h/tp, (r+1)*h/tp) of Q, K,
// V, rows [r*f/tp, ...) of FFN gate and up (column-parallel) and rows [r*V/tp, ...) of the output
// projection (vocab-parallel), all zero-copy views of the mapped file; the embedding lookup reads
// the mapped table directly (only looked-up rows are paged in). O and down come in two modes:
// - Megatron (the default): rank r keeps the input columns of O and down that its heads / FFN rows
//   produce (row-parallel; copied once at load, since a view has no row stride), so each rank's
//   O and down give a partial sum of the full output and one all-reduce after each completes it.
//   Sums in another order than one process: results equal one process within float rounding.
//   Mixtures of experts alike on the CPU backend (each expert's down, or with
//   --enable-expert-parallel the whole experts' slots, summed into a partial output; the shared
//   expert split as a dense FFN), and MLA's O over its heads' value columns.
// - Exact (--tp-exact, and mixtures of experts and MLA on CUDA): rank r keeps output rows
//   [r*d/tp, ...) of O and down (each expert's alike); the forward gathers the heads' and FFN
//   outputs before O and down and the d/tp output slices after them, so every output is computed
//   over its full input exactly as on one rank: greedy results equal a single process bit for bit.
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
// With megatron, O and down are row-parallel (their input columns); see megatron_misfit.
std::unique_ptr<Model> shard_model(const Model& full, int tp_rank, int tp,
                                   bool expert_parallel = false, bool megatron = false);

// Why Megatron TP does not apply to this model at this tp ("" when it does): a mixture of experts
// or multi-head latent attention on a device backend (host_backend false: only the CPU's MoE op
// writes partial sums), a shared expert whose width tp does not divide under expert parallelism,
// or O / down (each expert's, the shared expert's) input columns per rank that are not whole
// blocks of their quantized format.
std::string megatron_misfit(const ModelConfig& c, const ModelWeights& w, int tp,
                            bool expert_parallel = false, bool host_backend = true);

// The mode a rank runs: Megatron unless tp_exact or megatron_misfit says otherwise; `why` gets a
// line for the start-up log ("Megatron (...)" or "exact (...)").
bool use_megatron(const ModelConfig& c, const ModelWeights& w, int tp, bool tp_exact,
                  std::string* why = nullptr, bool expert_parallel = false,
                  bool host_backend = true);

}  // namespace shardlm::parallel
