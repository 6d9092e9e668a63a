// A node's supervisor: the one process per node that owns K > 1 ranks (--nproc-per-node K,
// rtp-llm's LOCAL_WORLD_SIZE, or one srun/mpirun task per node plus --nproc-per-node) starts this
// same command K times with SHARDLM_LOCAL_RANK = 0..K-1 and watches them. When one child fails the
// others are stopped (SIGTERM, then SIGKILL after a grace period), so a node never keeps half a
// group; SIGINT/SIGTERM to the supervisor go to the API server (local rank 0 of node 0, which
// drains and shuts the group down) or, on other nodes, to every child. On a node with several GPUs
// each child gets CUDA_VISIBLE_DEVICES set to one of them (local rank mod the GPU count).
#pragma once

namespace shardlm::dist {

struct SupervisorOptions {
  int local_world_size = 2;
  bool master_node = false;   // node 0: local rank 0 serves the API
  double grace_seconds = 15;  // after a failure or a signal, before SIGKILL
};

// Runs the children to the end; returns the node's exit status: 0 when every child exited 0 (or
// was stopped by a shutdown the supervisor passed on), else the first failing child's status.
int supervise_local_ranks(const SupervisorOptions& options);

}  // namespace shardlm::dist
