// The parallel layout of a group: how many tensor-parallel ranks (tp) share each layer, how many
// pipeline stages (pp) split the layers, and where each global rank sits. Ranks are node-major
// (global rank = node_rank x ranks_per_node + local_rank) and tensor-parallel groups live inside
// pipeline stages (rank = pp_stage x tp + tp_rank), so a TP group's all-reduces stay on as few
// nodes as possible and only stage-to-stage sends cross between TP groups.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/model_config.h"

namespace shardlm::parallel {

struct ParallelConfig {
  int tp = 1;  // ranks sharing every layer
  int pp = 1;  // pipeline stages
  // --enable-expert-parallel / --ep-size tp: a mixture of experts is sharded over each stage's tp
  // ranks by expert (tp_shard.h) instead of slicing every expert.
  bool expert_parallel = false;
  // --tp-exact: gather activations around O and down so results are bit-identical to one process;
  // otherwise Megatron TP (row-parallel O and down, one all-reduce after each; tp_shard.h).
  bool tp_exact = false;
  // A pipeline step is cut into micro-batches of at least this many tokens (micro_batch.h).
  int64_t min_micro_batch_tokens = 64;
  // --pp-steps-in-flight: batches of different requests moving through the pipeline at once
  // (vLLM's virtual engines); 0 = pp. Only the master reads it; 1 is one step at a time.
  int steps_in_flight = 0;
  int world_size() const { return tp * pp; }
};

// Where one rank sits in the group.
struct RankLayout {
  int rank = 0;
  int tp_rank = 0;      // 0..tp-1 within its stage
  int pp_stage = 0;     // 0..pp-1
  int first_layer = 0;  // the stage's layers: [first_layer, last_layer)
  int last_layer = 0;   // exclusive
  bool is_master() const { return rank == 0; }
};

// node_rank x ranks_per_node + local_rank.
int global_rank(int node_rank, int ranks_per_node, int local_rank);

// Layers [first, last) of `stage` out of pp: contiguous near-equal ranges, the first
// n_layers % pp stages one layer longer. Throws Error if pp exceeds n_layers.
std::pair<int, int> stage_layer_range(int stage, int pp, int n_layers);

// Throws Error if rank is not in [0, cfg.world_size()).
RankLayout rank_layout(const ParallelConfig& cfg, int rank, int n_layers);

// The global ranks of `rank`'s tensor-parallel group (its stage), in tp_rank order.
std::vector<int> tp_group(const ParallelConfig& cfg, int rank);
// The global ranks holding the same tp_rank in every stage, in stage order (rank's pipeline).
std::vector<int> pp_peers(const ParallelConfig& cfg, int rank);

// "rank 3: tp rank 1 of 2, stage 1 of 2, layers 15-29" (for start-up logs).
std::string describe(const ParallelConfig& cfg, const RankLayout& layout);

// Checks a layout before anything starts: tp and pp at least 1, tp x pp equal to the world size,
// the world size divisible by the number of nodes (every node runs the same number of ranks), tp
// dividing the attention heads, the FFN width, the hidden size and the vocabulary, tp dividing the
// KV heads or being a multiple of them (then KV heads replicate), pp at most the layers. Throws
// Error naming the flag, the values and the tp values that would fit.
void validate_parallel(const ParallelConfig& cfg, int world_size, int nnodes,
                       const ModelConfig& model);

// The tensor-parallel sizes `model` can be split into (1 first), for error messages and doctor.
std::vector<int> valid_tp_sizes(const ModelConfig& model);

}  // namespace shardlm::parallel
