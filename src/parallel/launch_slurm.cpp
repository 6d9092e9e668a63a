// srun: SLURM_PROCID, SLURM_NTASKS, the node list and the tasks per node.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "parallel/node_list.h"
#include "core/error.h"
#include "parallel/launch_readers.h"

namespace shardlm::parallel::launch {

namespace {

// Tasks on this node: SLURM_STEP_TASKS_PER_NODE, SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE
// (the same on every node), else SLURM_NTASKS / SLURM_NNODES.
std::pair<int, std::string> slurm_tasks_per_node(const Environment& env) {
  for (const char* name :
       {"SLURM_STEP_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
    const std::string* list = lookup(env, name);
    if (list == nullptr) continue;
    const auto counts = expand_tasks_per_node(*list);
    if (std::adjacent_find(counts.begin(), counts.end(), std::not_equal_to<>()) != counts.end()) {
      fail(
          "{} = '{}' gives the nodes different numbers of tasks; shardlm needs the same number "
          "on every node: use srun --ntasks-per-node=K",
          name, *list);
    }
    return {counts.front(), name};
  }
  const int tasks = require_env_int(env, "SLURM_NTASKS", "SLURM_PROCID");
  const int nodes = require_env_int(env, "SLURM_NNODES", "SLURM_PROCID");
  check_positive(nodes, "SLURM_NNODES");
  return {tasks / nodes, "SLURM_NTASKS / SLURM_NNODES"};
}

// Rank 0 runs on the first host of the step's (else the job's) node list.
HostPort slurm_first_host(const Environment& env) {
  for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
    if (const std::string* list = lookup(env, name)) {
      const auto hosts = expand_node_list(*list);
      if (hosts.empty()) fail("{} = '{}' names no host", name, *list);
      return {hosts.front(), master_port_env(env)};
    }
  }
  fail(
      "SLURM_PROCID is set but SLURM_JOB_NODELIST is not, so the master is unknown; give "
      "--dist-init-addr HOST:PORT");
}

}  // namespace

LaunchInfo from_slurm(const LaunchFlags& f, const Environment& env) {
  LaunchInfo info;
  info.mode = "slurm";
  LauncherRank r;
  r.rank_name = "SLURM_PROCID";
  r.rank = require_env_int(env, "SLURM_PROCID", "SLURM_PROCID");
  r.world_name = "SLURM_NTASKS";
  r.world = require_env_int(env, "SLURM_NTASKS", "SLURM_PROCID");
  r.local_rank_name = "SLURM_LOCALID";
  r.local_rank = require_env_int(env, "SLURM_LOCALID", "SLURM_PROCID");
  std::tie(r.local_size, r.local_size_name) = slurm_tasks_per_node(env);
  r.layout_hint = "use srun --distribution=block (the default)";
  place_launched_rank(info, r, f, env);
  const int node_id = require_env_int(env, "SLURM_NODEID", "SLURM_PROCID");
  if (node_id != r.rank / r.local_size) {
    fail(
        "SLURM_PROCID = {} with {} tasks per node belongs on node {}, but SLURM_NODEID is {}; "
        "use srun --distribution=block (the default)",
        r.rank, r.local_size, r.rank / r.local_size, node_id);
  }
  if (const auto nodes = env_int(env, "SLURM_NNODES"); nodes && *nodes != info.nnodes) {
    fail(
        "SLURM_NNODES = {} but SLURM_NTASKS {} / {} tasks per node = {} nodes; use srun "
        "--ntasks-per-node=K with SLURM_NTASKS = nodes x K",
        *nodes, r.world, r.local_size, r.world / r.local_size);
  }
  const auto m = explicit_master(f, env, true);
  set_master(info, m ? *m : slurm_first_host(env));
  return info;
}

}  // namespace shardlm::parallel::launch
