// rtp-llm's variables (WORLD_RANK, WORLD_SIZE, TP_SIZE, DISTRIBUTE_CONFIG_FILE, START_PORT...).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "parallel/launch_readers.h"
#include "parallel/node_list.h"

namespace shardlm::parallel::launch {

LaunchInfo from_rtp(const LaunchFlags& f, const Environment& env) {
  LaunchInfo info;
  info.mode = "rtp-llm";
  const int world = require_env_int(
      env, "WORLD_SIZE", first_set(env, {"WORLD_RANK", "DISTRIBUTE_CONFIG_FILE", "TP_SIZE"}));
  check_positive(world, "WORLD_SIZE");
  const int world_rank = env_int(env, "WORLD_RANK").value_or(0);
  check_below(world_rank, "WORLD_RANK", world, "WORLD_SIZE");
  const std::string* path = lookup(env, "DISTRIBUTE_CONFIG_FILE");
  const auto parts = path ? read_distribute_config(*path) : std::vector<ListedNode>{};
  const int n_parts = std::max<int>(1, parts.size());
  if (path && !has(env, "LOCAL_WORLD_SIZE") && world % n_parts != 0) {
    fail("WORLD_SIZE = {} does not split evenly over the {} nodes of DISTRIBUTE_CONFIG_FILE={}",
         world, n_parts, *path);
  }
  const int per_node = env_int(env, "LOCAL_WORLD_SIZE").value_or(world / n_parts);
  check_positive(per_node, "LOCAL_WORLD_SIZE");
  if (world % per_node != 0) {
    fail(
        "WORLD_SIZE = {} is not a multiple of LOCAL_WORLD_SIZE = {}; every node must run the "
        "same number of ranks",
        world, per_node);
  }
  const int nnodes = world / per_node;
  if (path && n_parts != nnodes) {
    fail("DISTRIBUTE_CONFIG_FILE={} lists {} node(s) but WORLD_SIZE {} / LOCAL_WORLD_SIZE {} = {}",
         *path, n_parts, world, per_node, nnodes);
  }
  if (world_rank % per_node != 0) {
    fail(
        "WORLD_RANK = {} is not a multiple of LOCAL_WORLD_SIZE = {}; as in rtp-llm, give each "
        "node's process the rank of its first local rank (node index x LOCAL_WORLD_SIZE)",
        world_rank, per_node);
  }
  agree(f.nnodes, "--nnodes", nnodes, "WORLD_SIZE / LOCAL_WORLD_SIZE", 1);
  agree(f.nproc_per_node, "--nproc-per-node", per_node, "LOCAL_WORLD_SIZE", 1);
  place_on_node(info, nnodes, world_rank / per_node, per_node, "LOCAL_WORLD_SIZE", f, env);
  if (const auto m = explicit_master(f, env, false)) {
    set_master(info, *m);
  } else if (!parts.empty()) {
    set_master(info, {parts[0].ip, parts[0].port.value_or(kDefaultMasterPort)});
  } else if (nnodes > 1) {
    fail(
        "WORLD_SIZE {} / LOCAL_WORLD_SIZE {} = {} nodes, but DISTRIBUTE_CONFIG_FILE is not set; "
        "point it at the JSON naming every node (part0 = the master), or give --dist-init-addr",
        world, per_node, nnodes);
  }
  return info;
}

}  // namespace shardlm::parallel::launch
