// Rank placement and the start-up checks of a parallel layout.
#include "parallel/parallel_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace shardlm::parallel {

namespace {

// Why `model` cannot be split over tp ranks, or "" when it can.
std::string tp_misfit(const ModelConfig& model, int tp) {
  const std::pair<const char*, int> divided[] = {{"attention heads", model.n_heads},
                                                 {"FFN width", model.ffn_dim},
                                                 {"hidden size", model.d_model},
                                                 {"vocabulary size", model.vocab_size}};
  for (const auto& [what, value] : divided) {
    if (value % tp != 0) return fmt::format("does not divide the model's {} ({})", what, value);
  }
  const int kv = model.n_kv_heads;
  if (kv % tp != 0 && (kv == 0 || tp % kv != 0)) {
    return fmt::format(
        "neither divides the model's KV heads ({}) nor is a multiple of them (KV heads are split "
        "across the ranks, or replicated when tp is a multiple of them)",
        kv);
  }
  return "";
}

void check_positive(int value, const char* flag) {
  if (value < 1) fail("{} is {}; it must be at least 1", flag, value);
}

}  // namespace

int global_rank(int node_rank, int ranks_per_node, int local_rank) {
  return node_rank * ranks_per_node + local_rank;
}

std::pair<int, int> stage_layer_range(int stage, int pp, int n_layers) {
  if (pp > n_layers) {
    fail("--pp {} exceeds the model's {} layers; every stage needs at least one layer", pp,
         n_layers);
  }
  const int base = n_layers / pp, extra = n_layers % pp;
  const int first = stage * base + std::min(stage, extra);
  return {first, first + base + (stage < extra ? 1 : 0)};
}

RankLayout rank_layout(const ParallelConfig& cfg, int rank, int n_layers) {
  if (rank < 0 || rank >= cfg.world_size()) {
    fail("rank {} is outside the group of tp {} x pp {} = {} ranks", rank, cfg.tp, cfg.pp,
         cfg.world_size());
  }
  RankLayout layout;
  layout.rank = rank;
  layout.tp_rank = rank % cfg.tp;
  layout.pp_stage = rank / cfg.tp;
  std::tie(layout.first_layer, layout.last_layer) =
      stage_layer_range(layout.pp_stage, cfg.pp, n_layers);
  return layout;
}

std::vector<int> tp_group(const ParallelConfig& cfg, int rank) {
  const int first = rank / cfg.tp * cfg.tp;
  std::vector<int> ranks;
  for (int r = 0; r < cfg.tp; ++r) ranks.push_back(first + r);
  return ranks;
}

std::vector<int> pp_peers(const ParallelConfig& cfg, int rank) {
  std::vector<int> ranks;
  for (int stage = 0; stage < cfg.pp; ++stage) ranks.push_back(stage * cfg.tp + rank % cfg.tp);
  return ranks;
}

std::string describe(const ParallelConfig& cfg, const RankLayout& layout) {
  return fmt::format(
      "rank {}: tp rank {} of {}, stage {} of {}, layers {}-{}{}", layout.rank, layout.tp_rank,
      cfg.tp, layout.pp_stage, cfg.pp, layout.first_layer, layout.last_layer - 1,
      cfg.expert_parallel && cfg.tp > 1
          ? fmt::format(", experts part {} of {} (expert parallel)", layout.tp_rank + 1, cfg.tp)
          : "");
}

std::vector<int> valid_tp_sizes(const ModelConfig& model) {
  std::vector<int> sizes;
  for (int tp = 1; tp <= std::max(model.n_heads, 1); ++tp) {
    if (tp_misfit(model, tp).empty()) sizes.push_back(tp);
  }
  return sizes;
}

void validate_parallel(const ParallelConfig& cfg, int world_size, int nnodes,
                       const ModelConfig& model) {
  check_positive(cfg.tp, "--tp (--tensor-parallel-size)");
  check_positive(cfg.pp, "--pp (--pipeline-parallel-size)");
  check_positive(nnodes, "the number of nodes (--nnodes)");
  if (world_size % nnodes != 0) {
    fail(
        "the group has {} ranks over {} nodes, which does not divide evenly; every node must run "
        "the same number of ranks",
        world_size, nnodes);
  }
  if (cfg.world_size() != world_size) {
    fail(
        "--tp {} x --pp {} = {} ranks, but the launch started {} ({} node(s) x {} rank(s) each); "
        "make them equal (ranks per node: --nproc-per-node, mpirun -np, srun --ntasks-per-node)",
        cfg.tp, cfg.pp, cfg.world_size(), world_size, nnodes, world_size / nnodes);
  }
  if (const std::string why = tp_misfit(model, cfg.tp); !why.empty()) {
    fail("--tp {} {}; tensor parallel sizes this model accepts: {}", cfg.tp, why,
         fmt::join(valid_tp_sizes(model), ", "));
  }
  if (cfg.pp > model.n_layers) {
    fail("--pp {} exceeds the model's {} layers; every stage needs at least one layer", cfg.pp,
         model.n_layers);
  }
}

}  // namespace shardlm::parallel
