// Data-parallel flags, layout, checks and replica command lines (data_parallel.h).
#include "parallel/data_parallel.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <set>

#include "core/error.h"

namespace shardlm::parallel {

namespace {

// Flags the controller owns or sets itself for each replica; all take one value.
const std::set<std::string>& replaced_flags() {
  static const std::set<std::string> names = {
      "--dp",   "--data-parallel-size", "--dp-size",        "--load-balance-method", "--host",
      "--port", "--metrics-port",       "--dist-init-addr", "--nproc-per-node"};
  return names;
}

bool is_threads_flag(const std::string& arg) {
  return arg == "-t" || arg == "--threads" || arg.rfind("--threads=", 0) == 0 ||
         (arg.rfind("-t", 0) == 0 && arg.size() > 2 && arg[2] != '-');
}

// The name part of "--flag=value", or the whole argument.
std::string flag_name(const std::string& arg) {
  const size_t eq = arg.find('=');
  return arg.rfind("--", 0) == 0 && eq != std::string::npos ? arg.substr(0, eq) : arg;
}

// The launchers that place every rank themselves: --dp cannot split their processes yet.
std::string rank_placing_launcher(const LaunchFlags& f, const Environment& env) {
  if (!f.ips.empty()) return "--ips";
  if (f.node_rank) return "--node-rank";
  for (const char* name : {"WORLD_RANK", "DISTRIBUTE_CONFIG_FILE", "OMPI_COMM_WORLD_RANK",
                           "OMPI_COMM_WORLD_SIZE", "SLURM_PROCID"}) {
    if (env.count(name)) return name;
  }
  return "";
}

std::string rank_range(const std::vector<int>& ranks) {
  if (ranks.size() == 1) return fmt::format("rank {}", ranks.front());
  return fmt::format("ranks {}-{}", ranks.front(), ranks.back());
}

}  // namespace

LoadBalanceMethod parse_load_balance_method(const std::string& text) {
  if (text == "shortest_queue") return LoadBalanceMethod::kShortestQueue;
  if (text == "round_robin") return LoadBalanceMethod::kRoundRobin;
  fail(
      "--load-balance-method '{}' is not known; use shortest_queue (the replica with the fewest "
      "requests running and waiting) or round_robin",
      text);
}

const char* load_balance_method_name(LoadBalanceMethod method) {
  return method == LoadBalanceMethod::kRoundRobin ? "round_robin" : "shortest_queue";
}

void add_data_parallel_flags(CLI::App& cmd, DataParallelFlags& flags) {
  cmd.add_option("--dp,--data-parallel-size,--dp-size", flags.size,
                 "engine replicas behind this API, each its own --tp x --pp group (default 1)");
  cmd.add_option("--load-balance-method", flags.method,
                 "--dp: how a new request picks its replica: shortest_queue (fewest requests "
                 "running and waiting, then the least KV cache in use) or round_robin")
      ->capture_default_str();
}

std::vector<int> DataParallelLayout::ranks_of(int replica) const {
  std::vector<int> ranks;
  for (int r = 0; r < ranks_per_replica(); ++r) ranks.push_back(replica * ranks_per_replica() + r);
  return ranks;
}

std::string DataParallelLayout::describe() const {
  std::string out = fmt::format("dp {} x pp {} x tp {} = {} rank{}", dp, pp, tp, world_size(),
                                world_size() == 1 ? "" : "s");
  for (int r = 0; r < dp; ++r) {
    out += fmt::format("{} replica {}: {}", r == 0 ? ";" : ",", r, rank_range(ranks_of(r)));
  }
  return out;
}

DataParallelLayout settle_data_parallel(const DataParallelFlags& dp, const LaunchFlags& launch,
                                        const Environment& env) {
  DataParallelLayout l;
  l.dp = dp.size;
  l.tp = launch.tp.value_or(1);
  l.pp = launch.pp.value_or(1);
  l.method = parse_load_balance_method(dp.method);
  if (l.dp < 1) {
    fail("--dp {} is not a replica count: give 1 or more (--dp N runs N engine replicas)", l.dp);
  }
  if (l.dp == 1) return l;
  if (launch.nproc_per_node && *launch.nproc_per_node != l.world_size()) {
    fail(
        "--nproc-per-node {} does not match --dp {} x --pp {} x --tp {} = {} ranks on this node; "
        "give --nproc-per-node {} or leave it out",
        *launch.nproc_per_node, l.dp, l.pp, l.tp, l.world_size(), l.world_size());
  }
  if (launch.nnodes.value_or(1) > 1) {
    fail(
        "--dp {} with --nnodes {}: data parallelism across nodes is not supported yet; run one "
        "`shardlm serve --dp N` per node (each node its own API) behind `shardlm frontend`, or "
        "drop --nnodes",
        l.dp, *launch.nnodes);
  }
  if (const std::string by = rank_placing_launcher(launch, env); !by.empty()) {
    fail(
        "--dp {} cannot be combined with {} (a launch that places every rank itself) yet: start "
        "one `shardlm serve --dp N` per node without it",
        l.dp, by);
  }
  return l;
}

std::vector<std::string> replica_command_line(const std::vector<std::string>& own,
                                              const DataParallelLayout& layout,
                                              const ReplicaEndpoint& e, int threads) {
  std::vector<std::string> out;
  bool has_threads = false;
  for (size_t i = 0; i < own.size(); ++i) {
    const std::string& arg = own[i];
    if (i > 0 && replaced_flags().count(flag_name(arg))) {
      if (arg.find('=') == std::string::npos) ++i;  // skip its value too
      continue;
    }
    has_threads = has_threads || (i > 0 && is_threads_flag(arg));
    out.push_back(arg);
  }
  out.insert(out.end(), {"--host", "127.0.0.1", "--port", std::to_string(e.api_port)});
  if (layout.ranks_per_replica() > 1) {
    out.insert(out.end(), {"--nproc-per-node", std::to_string(layout.ranks_per_replica()),
                           "--dist-init-addr", fmt::format("127.0.0.1:{}", e.rendezvous_port)});
  }
  if (threads > 0 && !has_threads) out.insert(out.end(), {"--threads", std::to_string(threads)});
  return out;
}

int threads_per_rank(const DataParallelLayout& layout, unsigned cores) {
  return std::max(1, static_cast<int>(cores) / std::max(1, layout.world_size()));
}

}  // namespace shardlm::parallel
