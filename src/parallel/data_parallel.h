// Data parallelism inside one launch (`serve --dp N`, vLLM's --data-parallel-size, SGLang's
// --dp-size): N engine replicas, each its own TP x PP group (or one rank when tp = pp = 1), behind
// one OpenAI API. This file holds what needs no HTTP: the flags, the layout (dp x pp x tp, which
// global ranks form which replica: replica r holds ranks r*tp*pp .. r*tp*pp + tp*pp - 1), the
// checks that refuse what is not supported, and each replica's command line. The controller
// (fleet/dp_controller.h) starts the replicas and routes requests to them.
//
// Each replica is a process of its own (a supervisor of its ranks when tp x pp > 1), with its own
// API port on the loopback, its own rendezvous port and its own generations, so one replica's
// failure (a crash, an abort, a broken group) never takes the others down.
//
// Multi-node: world = dp x pp x tp ranks, node-major, whole replicas per node. Only one node is
// implemented; --nnodes > 1 (or a launcher that places ranks: mpirun, srun, rtp-llm, --ips) with
// --dp > 1 is refused with an error naming the alternative.
#pragma once

#include <string>
#include <vector>

#include "parallel/launch_env.h"

namespace CLI {
class App;
}

namespace shardlm::parallel {

enum class LoadBalanceMethod { kShortestQueue, kRoundRobin };
LoadBalanceMethod parse_load_balance_method(const std::string& text);  // throws Error
const char* load_balance_method_name(LoadBalanceMethod method);

struct DataParallelFlags {
  int size = 1;                           // --dp, --data-parallel-size, --dp-size
  std::string method = "shortest_queue";  // --load-balance-method
};

// Registers --dp/--data-parallel-size/--dp-size and --load-balance-method on `cmd`.
void add_data_parallel_flags(CLI::App& cmd, DataParallelFlags& flags);

struct DataParallelLayout {
  int dp = 1;
  int tp = 1;
  int pp = 1;
  LoadBalanceMethod method = LoadBalanceMethod::kShortestQueue;
  int ranks_per_replica() const { return tp * pp; }
  int world_size() const { return dp * tp * pp; }
  std::vector<int> ranks_of(int replica) const;  // global ranks, ascending
  // "dp 2 x pp 1 x tp 2 = 4 ranks; replica 0: ranks 0-1, replica 1: ranks 2-3".
  std::string describe() const;
};

// The layout of `serve --dp N`, checked against the launch flags and the environment. Throws
// Error naming the flags when: dp < 1; --nproc-per-node is given and is not dp x tp x pp; more than
// one node (--nnodes, --node-rank, --ips) or a rank-placing launcher (mpirun, srun, rtp-llm
// variables) is asked for together with dp > 1.
DataParallelLayout settle_data_parallel(const DataParallelFlags& dp, const LaunchFlags& launch,
                                        const Environment& env);

// Where replica `replica` listens and meets its ranks.
struct ReplicaEndpoint {
  int replica = 0;
  int api_port = 0;         // on 127.0.0.1
  int rendezvous_port = 0;  // used when the replica is a group
};

// The controller's own command line (`own`, argv[0] first) turned into replica `e`'s: without the
// data-parallel flags, --host/--port/--metrics-port, --dist-init-addr and --nproc-per-node (in
// both `--flag value` and `--flag=value` forms), then with --host 127.0.0.1 --port <api_port>,
// and for a group --nproc-per-node <tp*pp> --dist-init-addr 127.0.0.1:<rendezvous_port>; with
// --threads <threads> when `threads` > 0 and the command line gives none.
std::vector<std::string> replica_command_line(const std::vector<std::string>& own,
                                              const DataParallelLayout& layout,
                                              const ReplicaEndpoint& e, int threads);

// CPU threads per rank when the user gave none: the cores shared evenly by every rank of every
// replica (at least 1), so N replicas on one machine do not oversubscribe it.
int threads_per_rank(const DataParallelLayout& layout, unsigned cores);

}  // namespace shardlm::parallel
