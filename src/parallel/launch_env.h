// Who am I in the group: this process's rank, the world size, its place on its node and the
// master's rendezvous address, from whichever way the user started the group:
//
//   flags     SGLang style: --nnodes N --node-rank R --dist-init-addr HOST:PORT [--nproc-per-node
//   K] ips       FastDeploy style: --ips IP0,IP1,... on every node; a node's rank is the position
//   of
//             its own address, the first is the master
//   rtp-llm   WORLD_SIZE, WORLD_RANK, LOCAL_WORLD_SIZE, TP_SIZE, PP_SIZE, DISTRIBUTE_CONFIG_FILE
//   openmpi   mpirun: OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE (PMIX_RANK for the rank)
//   slurm     srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID, SLURM_NNODES, ...
//   single    nothing of the above: one process
//
// Precedence: explicit flags (--node-rank or --ips) > rtp-llm > OpenMPI > SLURM > single. In the
// environment modes --nnodes, --nproc-per-node, --local-rank, --tp and --pp must agree with what
// the launcher says. Ranks are node-major: rank = node_rank x local_world_size + local_rank.
//
// One process per node with K > 1 ranks (--nproc-per-node K, rtp-llm's LOCAL_WORLD_SIZE, or an
// srun/mpirun started with one task per node plus --nproc-per-node K) is that node's supervisor: it
// starts local ranks 0..K-1 as children with SHARDLM_LOCAL_RANK set, and each child resolves its
// own rank from the same flags.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parallel/parallel_config.h"

namespace CLI {
class App;
}

namespace shardlm::parallel {

inline constexpr int kDefaultMasterPort = 29500;
// Set by a node's supervisor in each child it starts: the child's local rank.
inline constexpr const char* kLocalRankVariable = "SHARDLM_LOCAL_RANK";

// The command-line values; std::nullopt / empty = not given.
struct LaunchFlags {
  std::optional<int> tp;              // --tp, --tensor-parallel-size
  std::optional<int> pp;              // --pp, --pipeline-parallel-size
  std::optional<int> nnodes;          // --nnodes
  std::optional<int> node_rank;       // --node-rank
  std::optional<int> nproc_per_node;  // --nproc-per-node (1 when not given)
  std::optional<int> local_rank;      // --local-rank (the supervisor's children; also env)
  std::string dist_init_addr;         // --dist-init-addr HOST:PORT
  std::vector<std::string> ips;       // --ips IP0,IP1,...
  double dist_timeout = 30;   // --dist-timeout: seconds for every rank to reach the rendezvous
  double step_timeout = 10;   // --dist-step-timeout: a collective's limit while serving
  std::string cluster_token;  // --cluster-token (env SHARDLM_CLUSTER_TOKEN)
  std::string dist_backend = "auto";    // --dist-backend auto|nccl|gloo (env SHARDLM_DIST_BACKEND)
  bool enable_expert_parallel = false;  // --enable-expert-parallel (vLLM)
  std::optional<int> ep_size;           // --ep-size (SGLang): 1, or the tp size
  bool tp_exact = false;                // --tp-exact: exact TP instead of Megatron
  int pp_steps_in_flight = 0;           // --pp-steps-in-flight: 0 = pp, 1 = one step at a time
};

struct LaunchInfo {
  int world_size = 1;
  int rank = 0;
  int local_rank = 0;
  int local_world_size = 1;  // ranks on this node
  int node_rank = 0;
  int nnodes = 1;
  std::string master_host = "127.0.0.1";  // rank 0's rendezvous
  int master_port = kDefaultMasterPort;
  std::string mode = "single";  // single | flags | ips | rtp-llm | openmpi | slurm
  // tp and pp from the flags, or TP_SIZE / PP_SIZE under rtp-llm; 1 when neither says.
  ParallelConfig parallel;
  // This process is its node's supervisor: it owns no rank itself but starts local ranks
  // 0..local_world_size-1 (with kLocalRankVariable set); rank and local_rank describe local rank 0.
  bool supervisor = false;
};

using Environment = std::map<std::string, std::string>;

// Resolves the launch from the flags, an environment and this machine's identities (interface
// addresses and host names, as comm::machine_identities() returns them). Reads no global state
// except the DISTRIBUTE_CONFIG_FILE it names. Throws Error naming the flags or variables and their
// values on any inconsistency.
LaunchInfo resolve_launch(const LaunchFlags& flags, const Environment& env,
                          const std::vector<std::string>& local_identities);
// The same with the process environment and comm::machine_identities().
LaunchInfo resolve_launch(const LaunchFlags& flags);

// Registers --tp/--tensor-parallel-size, --pp/--pipeline-parallel-size, --nnodes, --node-rank,
// --nproc-per-node, --local-rank (hidden), --dist-init-addr, --ips, --dist-timeout,
// --dist-step-timeout, --cluster-token (env SHARDLM_CLUSTER_TOKEN) and --dist-backend (env
// SHARDLM_DIST_BACKEND) on `cmd`.
void add_launch_flags(CLI::App& cmd, LaunchFlags& flags);

struct HostPort {
  std::string host;
  int port = kDefaultMasterPort;
};

// "HOST:PORT", "HOST" (default port), "[IPV6]:PORT" or "[IPV6]". Throws Error naming `what` (the
// flag or variable) and the text when the host is empty, the port is not in 1-65535, or an IPv6
// address lacks brackets.
HostPort parse_host_port(std::string_view text, std::string_view what,
                         int default_port = kDefaultMasterPort);

// The process environment as a map.
Environment current_environment();

}  // namespace shardlm::parallel
