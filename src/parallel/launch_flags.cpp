// SGLang-style flags: --nnodes N --node-rank R --dist-init-addr HOST:PORT (--nproc-per-node).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "parallel/launch_readers.h"

namespace shardlm::parallel::launch {

LaunchInfo from_flags(const LaunchFlags& f, const Environment& env) {
  LaunchInfo info;
  info.mode = "flags";
  const int nnodes = f.nnodes.value_or(1), node_rank = f.node_rank.value_or(0);
  check_positive(nnodes, "--nnodes");
  check_below(node_rank, "--node-rank", nnodes, "--nnodes");
  place_on_node(info, nnodes, node_rank, ranks_per_node(f, nnodes), "--nproc-per-node", f, env);
  set_master_or_fail(info, f, env, fmt::format("--nnodes {}", nnodes));
  return info;
}

}  // namespace shardlm::parallel::launch
