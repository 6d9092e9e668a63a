// A non-master rank of a serving group: joins the group, runs its tensor-parallel shard for every
// step the master broadcasts, and answers HTTP only on /health (its rank and the master's address);
// generation requests get 421 pointing to the master. Returns the exit status: 0 when the master
// shut the group down, 1 when the master vanished or the group failed.
#pragma once

#include "parallel/group.h"
#include "server/api_server.h"

namespace shardlm::server {

int run_worker_node(const ServerArgs& args);

// The runner factory for the master of a group (joins `group` when the engine builds its runner;
// tensor- or pipeline-parallel by the group's layout).
std::function<std::unique_ptr<ModelRunner>(const Model&, Backend&, const KvCacheShape&, int64_t)>
group_master_runner(std::shared_ptr<parallel::Group> group);

}  // namespace shardlm::server
