// mpirun: OpenMPI's OMPI_COMM_WORLD_* (and PMIx) variables.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "parallel/launch_readers.h"

namespace shardlm::parallel::launch {

LaunchInfo from_openmpi(const LaunchFlags& f, const Environment& env) {
  LaunchInfo info;
  info.mode = "openmpi";
  LauncherRank r;
  const char* trigger =
      first_set(env, {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"});
  r.rank_name = has(env, "OMPI_COMM_WORLD_RANK") ? "OMPI_COMM_WORLD_RANK" : "PMIX_RANK";
  if (!has(env, r.rank_name.c_str())) {
    fail(
        "{} is set but neither OMPI_COMM_WORLD_RANK nor PMIX_RANK is; mpirun sets them together "
        "(unset {} if this is not an mpirun launch)",
        trigger, trigger);
  }
  r.rank = require_env_int(env, r.rank_name.c_str(), trigger);
  r.world_name = "OMPI_COMM_WORLD_SIZE";
  r.world = require_env_int(env, "OMPI_COMM_WORLD_SIZE", trigger);
  r.local_rank_name = "OMPI_COMM_WORLD_LOCAL_RANK";
  r.local_rank = require_env_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", trigger);
  r.local_size_name = "OMPI_COMM_WORLD_LOCAL_SIZE";
  r.local_size = require_env_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", trigger);
  r.layout_hint = "start mpirun with --map-by slot (the default), not --map-by node";
  place_launched_rank(info, r, f, env);
  set_master_or_fail(info, f, env, fmt::format("mpirun ({} = {})", r.world_name, r.world));
  return info;
}

}  // namespace shardlm::parallel::launch
