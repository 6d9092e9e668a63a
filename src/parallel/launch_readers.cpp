// The launch readers' shared pieces (parallel/launch_readers.h).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/error.h"
#include "parallel/launch_readers.h"

namespace shardlm::parallel::launch {

namespace {
const char* const kLocalhost = "127.0.0.1";
}  // namespace

// ---- values and names ----------------------------------------------------------------------

const std::string* lookup(const Environment& env, const char* name) {
  const auto it = env.find(name);
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

bool has(const Environment& env, const char* name) {
  return lookup(env, name) != nullptr;
}

// The first of `names` that is set (the last when none is): the variable that chose a mode.
const char* first_set(const Environment& env, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (has(env, name)) return name;
  }
  return *(names.end() - 1);
}

int parse_int(std::string_view text, std::string_view what) {
  int value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) {
    fail("{} is '{}'; expected a non-negative integer", what, text);
  }
  return value;
}

int parse_port(std::string_view text, std::string_view what) {
  int port = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port < 1 ||
      port > 65535) {
    fail("{}: port '{}' is not a number in 1-65535", what, text);
  }
  return port;
}

std::optional<int> env_int(const Environment& env, const char* name) {
  const std::string* text = lookup(env, name);
  if (text == nullptr) return std::nullopt;
  return parse_int(*text, name);
}

// A variable the launcher that set `trigger` always sets too.
int require_env_int(const Environment& env, const char* name, const char* trigger) {
  if (const auto value = env_int(env, name)) return *value;
  fail(
      "{} is set but {} is not; the launcher that sets one sets both (unset {} if this is not "
      "such a launch)",
      trigger, name, trigger);
}

void check_positive(int value, std::string_view name) {
  if (value < 1) fail("{} is {}; it must be at least 1", name, value);
}

void check_below(int value, std::string_view name, int bound, std::string_view bound_name) {
  if (value >= bound) {
    fail("{} is {} but {} is {}; it must be below that (ranks count from 0)", name, value,
         bound_name, bound);
  }
}

// A flag must agree with the launcher's value; returns the one that was given (`fallback` if
// neither).
int agree(std::optional<int> flag, std::string_view flag_name, std::optional<int> env_value,
          std::string_view env_name, int fallback) {
  if (flag && env_value && *flag != *env_value) {
    fail("{} {} disagrees with {} = {}; drop {} or make them equal", flag_name, *flag, env_name,
         *env_value, flag_name);
  }
  return flag.value_or(env_value.value_or(fallback));
}

// ---- placing this process --------------------------------------------------------------------

// The local rank the supervisor gave a child: --local-rank, else SHARDLM_LOCAL_RANK.
std::optional<std::pair<int, std::string>> given_local_rank(const LaunchFlags& f,
                                                            const Environment& env) {
  if (f.local_rank) return std::pair{*f.local_rank, std::string("--local-rank")};
  if (const auto v = env_int(env, kLocalRankVariable))
    return std::pair{*v, std::string(kLocalRankVariable)};
  return std::nullopt;
}

// One process per node that holds `per_node` ranks: a supervisor's child when a local rank was
// given, else the supervisor itself (or the only rank when per_node is 1).
void place_on_node(LaunchInfo& info, int nnodes, int node_rank, int per_node,
                   std::string_view per_node_name, const LaunchFlags& f, const Environment& env) {
  check_positive(per_node, per_node_name);
  info.nnodes = nnodes;
  info.node_rank = node_rank;
  info.local_world_size = per_node;
  info.world_size = nnodes * per_node;
  info.local_rank = 0;
  if (const auto local = given_local_rank(f, env)) {
    check_below(local->first, local->second, per_node, per_node_name);
    info.local_rank = local->first;
  } else {
    info.supervisor = per_node > 1;
  }
  info.rank = global_rank(node_rank, per_node, info.local_rank);
}

// Checks a per-rank launcher's numbers and places this process, or -- when the launcher started
// one task per node and --nproc-per-node asks for more -- makes it that node's supervisor.
void place_launched_rank(LaunchInfo& info, const LauncherRank& r, const LaunchFlags& f,
                         const Environment& env) {
  check_positive(r.world, r.world_name);
  check_positive(r.local_size, r.local_size_name);
  check_below(r.rank, r.rank_name, r.world, r.world_name);
  check_below(r.local_rank, r.local_rank_name, r.local_size, r.local_size_name);
  if (r.world % r.local_size != 0) {
    fail("{} = {} is not a multiple of {} = {}; every node must run the same number of ranks",
         r.world_name, r.world, r.local_size_name, r.local_size);
  }
  if (r.rank % r.local_size != r.local_rank) {
    fail(
        "{} = {} with {} = {} and {} = {} is not node-major placement (rank = node x ranks per "
        "node + local rank); {}",
        r.rank_name, r.rank, r.local_rank_name, r.local_rank, r.local_size_name, r.local_size,
        r.layout_hint);
  }
  const int nnodes = r.world / r.local_size;
  agree(f.nnodes, "--nnodes", nnodes, r.world_name + " / " + r.local_size_name, 1);
  if (r.local_size == 1 && f.nproc_per_node.value_or(1) > 1) {
    place_on_node(info, nnodes, r.rank, *f.nproc_per_node, "--nproc-per-node", f, env);
    return;
  }
  agree(f.nproc_per_node, "--nproc-per-node", r.local_size, r.local_size_name, 1);
  agree(f.local_rank, "--local-rank", r.local_rank, r.local_rank_name, 0);
  info.world_size = r.world;
  info.rank = r.rank;
  info.local_rank = r.local_rank;
  info.local_world_size = r.local_size;
  info.nnodes = nnodes;
  info.node_rank = r.rank / r.local_size;
}

// ---- the master's address ---------------------------------------------------------------------

// "[fe80::1]" -> "fe80::1".
std::string unbracket(const std::string& host) {
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  return bracketed ? host.substr(1, host.size() - 2) : host;
}

// --dist-init-addr, else (when `use_master_env`) MASTER_ADDR with MASTER_PORT.
std::optional<HostPort> explicit_master(const LaunchFlags& f, const Environment& env,
                                        bool use_master_env) {
  if (!f.dist_init_addr.empty()) return parse_host_port(f.dist_init_addr, "--dist-init-addr");
  if (!use_master_env) return std::nullopt;
  const std::string* host = lookup(env, "MASTER_ADDR");
  if (host == nullptr) return std::nullopt;
  HostPort m{unbracket(*host), kDefaultMasterPort};
  const bool space =
      std::any_of(m.host.begin(), m.host.end(), [](unsigned char c) { return std::isspace(c); });
  if (space || std::count(m.host.begin(), m.host.end(), ':') == 1) {
    fail(
        "MASTER_ADDR is '{}'; expected a host name or address alone (the port goes in MASTER_PORT)",
        *host);
  }
  if (const std::string* port = lookup(env, "MASTER_PORT"))
    m.port = parse_port(*port, "MASTER_PORT");
  return m;
}

int master_port_env(const Environment& env) {
  const std::string* port = lookup(env, "MASTER_PORT");
  return port ? parse_port(*port, "MASTER_PORT") : kDefaultMasterPort;
}

void set_master(LaunchInfo& info, const HostPort& m) {
  info.master_host = m.host;
  info.master_port = m.port;
}

// Modes without a list of nodes: the explicit address, else localhost for a one-node group.
void set_master_or_fail(LaunchInfo& info, const LaunchFlags& f, const Environment& env,
                        std::string_view how) {
  if (const auto m = explicit_master(f, env, true)) return set_master(info, *m);
  if (info.nnodes > 1) {
    fail(
        "{}: a group over {} nodes needs the master's rendezvous address; give --dist-init-addr "
        "HOST:PORT (node 0's address, the same on every node) or set MASTER_ADDR and MASTER_PORT",
        how, info.nnodes);
  }
  set_master(info, {kLocalhost, master_port_env(env)});
}

// Ranks on each node: --nproc-per-node, else (as SGLang and FastDeploy read --tp) the whole
// group's --tp x --pp spread evenly over the nodes.
int ranks_per_node(const LaunchFlags& f, int nnodes) {
  if (f.nproc_per_node) return *f.nproc_per_node;
  const int total = f.tp.value_or(1) * f.pp.value_or(1);
  if (total <= nnodes) return 1;
  if (total % nnodes != 0) {
    fail(
        "--tp {} x --pp {} = {} ranks do not split evenly over {} nodes; give --nproc-per-node "
        "(the ranks each node runs) or a layout that divides",
        f.tp.value_or(1), f.pp.value_or(1), total, nnodes);
  }
  return total / nnodes;
}

}  // namespace shardlm::parallel::launch
