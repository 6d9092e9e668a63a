// A node's supervisor: the one process per node that owns K > 1 ranks (--nproc-per-node K,
// rtp-llm's LOCAL_WORLD_SIZE, or one srun/mpirun task per node plus --nproc-per-node) starts this
// same command K times with SHARDLM_LOCAL_RANK = 0..K-1 and watches them.
// - When the API server (local rank 0 of node 0) fails, the node's other ranks are stopped
//   (SIGTERM, then SIGKILL after a grace period). When any other rank dies, the others stay: the
//   master reports the broken group (503 naming the rank) exactly as for a rank on another node,
//   and the supervisor starts the rank again (up to 3 times), so the group re-forms by itself.
// - SIGINT/SIGTERM to the supervisor go to the API server (which drains and then ends the group)
//   or, on other nodes, to every child (which wait for the master to end the group).
// - Each child dies with its supervisor (SIGTERM on the parent's death; follow_supervisor()).
// - On a node with several GPUs each child gets CUDA_VISIBLE_DEVICES set to one of them (local
//   rank mod the GPU count).
#pragma once

#include <string>
#include <vector>

namespace shardlm::parallel {

struct SupervisorOptions {
  int local_world_size = 2;
  bool master_node = false;   // node 0: local rank 0 serves the API
  double grace_seconds = 15;  // after a failure or a signal, before SIGKILL
};

// Set by the supervisor in each child: its own pid, so the child can tell that it is gone.
inline constexpr const char* kSupervisorPidVariable = "SHARDLM_SUPERVISOR_PID";

// Runs the children to the end; returns the node's exit status: 0 when every child exited 0,
// else the first failing child's status (also when it failed during a shutdown: a rank killed
// after the grace period makes the node exit 137, not 0).
int supervise_local_ranks(const SupervisorOptions& options);

// In a supervised child (kSupervisorPidVariable set): asks the kernel for SIGTERM when the
// supervisor dies, and throws Error when it is already gone. Does nothing in other processes.
void follow_supervisor();

// This process's own command line ("shardlm serve ..." as /proc/self/cmdline has it), read back
// so children (local ranks, data-parallel replicas) run exactly the same command. Throws Error
// when it cannot be read.
std::vector<std::string> own_command_line();
// A rank started by mpirun or srun: SIGTERM when the launcher process dies (a SIGKILLed mpirun
// must not leave ranks serving); the master drains, the workers follow it.
void die_with_launcher();
// True in a supervised child whose supervisor has died (its parent is no longer that pid).
bool supervisor_gone();

}  // namespace shardlm::parallel
