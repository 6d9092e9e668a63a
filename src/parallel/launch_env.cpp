// resolve_launch: pick the launch mode, let that mode's reader place this process (node, local
// rank, rank) and find the master, then settle tp and pp. Every reader names the flag or variable
// behind each value, so an inconsistent launch fails with the names and values that disagree.
#include "parallel/launch_env.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>

#include "comm/local_addresses.h"
#include "core/error.h"
#include "parallel/node_list.h"

extern char** environ;

namespace shardlm::parallel {

namespace {

const char* const kLocalhost = "127.0.0.1";

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

// What a per-rank launcher (mpirun, srun) says about this process, with the variables' names.
struct LauncherRank {
  int rank, world, local_rank, local_size;
  std::string rank_name, world_name, local_rank_name, local_size_name, layout_hint;
};

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

// ---- flags: SGLang style and FastDeploy --ips -------------------------------------------------

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

LaunchInfo from_flags(const LaunchFlags& f, const Environment& env) {
  LaunchInfo info;
  info.mode = "flags";
  const int nnodes = f.nnodes.value_or(1), node_rank = f.node_rank.value_or(0);
  check_positive(nnodes, "--nnodes");
  check_below(node_rank, "--node-rank", nnodes, "--nnodes");
  place_on_node(info, nnodes, node_rank, ranks_per_node(f, nnodes), "--nproc-per-node", f, env);
  set_master_or_fail(info, f, env, fmt::format("--nnodes {}", nnodes));
  return info;
}

std::string join(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ", "));
}

// This node's index in --ips: the one entry that is an address or name of this machine.
int match_ips(const std::vector<std::string>& ips, const std::vector<std::string>& local) {
  std::vector<std::string> mine;
  for (const auto& a : local) mine.push_back(comm::canonical_address(a));
  std::vector<int> hits;
  for (size_t i = 0; i < ips.size(); ++i) {
    if (std::find(mine.begin(), mine.end(), comm::canonical_address(ips[i])) != mine.end())
      hits.push_back(int(i));
  }
  if (hits.empty()) {
    fail(
        "--ips {}: none of these is this machine (its addresses and names: {}); list this "
        "node's own address, or give --node-rank",
        join(ips), join(local));
  }
  if (hits.size() > 1) {
    fail(
        "--ips {}: entries {} and {} ({} and {}) are both this machine, so its rank is "
        "ambiguous; list each node once by an address of its own, or give --node-rank",
        join(ips), hits[0], hits[1], ips[hits[0]], ips[hits[1]]);
  }
  return hits[0];
}

void check_ip_list(const std::vector<std::string>& ips) {
  std::vector<std::string> seen;
  for (const auto& ip : ips) {
    if (ip.empty()) fail("--ips {}: an entry is empty (stray comma?)", join(ips));
    const std::string c = comm::canonical_address(ip);
    if (std::find(seen.begin(), seen.end(), c) != seen.end()) {
      fail("--ips {}: {} is listed twice; list every node once, the master first", join(ips), ip);
    }
    seen.push_back(c);
  }
}

LaunchInfo from_ips(const LaunchFlags& f, const Environment& env,
                    const std::vector<std::string>& local) {
  LaunchInfo info;
  info.mode = "ips";
  check_ip_list(f.ips);
  const int n = static_cast<int>(f.ips.size());
  agree(f.nnodes, "--nnodes", n, "the number of --ips", n);
  int node_rank = 0;
  if (f.node_rank) {
    check_below(*f.node_rank, "--node-rank", n, "the number of --ips");
    node_rank = *f.node_rank;
  } else {
    node_rank = match_ips(f.ips, local);
  }
  place_on_node(info, n, node_rank, ranks_per_node(f, n), "--nproc-per-node", f, env);
  const auto m = explicit_master(f, env, false);
  set_master(info, m ? *m : HostPort{unbracket(f.ips[0]), kDefaultMasterPort});
  return info;
}

// ---- rtp-llm ------------------------------------------------------------------------------

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

// ---- OpenMPI and SLURM ------------------------------------------------------------------------

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

// ---- choosing the mode ------------------------------------------------------------------------

std::string pick_mode(const LaunchFlags& f, const Environment& env) {
  if (!f.ips.empty()) return "ips";
  if (f.node_rank) return "flags";
  if (has(env, "WORLD_RANK") || has(env, "DISTRIBUTE_CONFIG_FILE") ||
      (has(env, "TP_SIZE") && has(env, "WORLD_SIZE"))) {
    return "rtp-llm";
  }
  if (has(env, "OMPI_COMM_WORLD_RANK") || has(env, "OMPI_COMM_WORLD_SIZE") ||
      (has(env, "PMIX_RANK") && !has(env, "SLURM_PROCID"))) {
    return "openmpi";
  }
  if (has(env, "SLURM_PROCID")) return "slurm";
  if (f.nnodes.value_or(1) > 1) {
    fail(
        "--nnodes {} needs this node's place: --node-rank R (0 = the master) with "
        "--dist-init-addr HOST:PORT, or --ips listing every node; or start under mpirun or srun",
        *f.nnodes);
  }
  if (f.nnodes || f.nproc_per_node || given_local_rank(f, env)) return "flags";
  // vLLM's habit: `--tp 2` alone runs two ranks on this machine.
  if (f.tp.value_or(1) * f.pp.value_or(1) > 1) return "flags";
  return "single";
}

void resolve_parallel(LaunchInfo& info, const LaunchFlags& f, const Environment& env) {
  const bool rtp = info.mode == "rtp-llm";
  const auto tp_env = rtp ? env_int(env, "TP_SIZE") : std::nullopt;
  const auto pp_env = rtp ? env_int(env, "PP_SIZE") : std::nullopt;
  info.parallel.tp = agree(f.tp, "--tp", tp_env, "TP_SIZE", 1);
  info.parallel.pp = agree(f.pp, "--pp", pp_env, "PP_SIZE", 1);
  check_positive(info.parallel.tp, f.tp ? "--tp" : "TP_SIZE");
  check_positive(info.parallel.pp, f.pp ? "--pp" : "PP_SIZE");
  if (f.ep_size && *f.ep_size != 1 && *f.ep_size != info.parallel.tp) {
    fail(
        "--ep-size {} is not supported with --tp {}: the experts are sharded over the "
        "tensor-parallel ranks, so give --ep-size {} (or --enable-expert-parallel)",
        *f.ep_size, info.parallel.tp, info.parallel.tp);
  }
  info.parallel.expert_parallel = f.enable_expert_parallel || f.ep_size.value_or(1) > 1;
}

}  // namespace

HostPort parse_host_port(std::string_view text, std::string_view what, int default_port) {
  HostPort hp{"", default_port};
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) fail("{} '{}': '[' without ']'", what, text);
    hp.host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':')
      fail("{} '{}': expected ':PORT' after ']'", what, text);
  } else {
    const size_t colon = text.find(':');
    if (colon != text.rfind(':')) {
      fail("{} '{}': write an IPv6 address in brackets, as [ADDRESS]:PORT", what, text);
    }
    hp.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) rest = text.substr(colon);
  }
  if (hp.host.empty()) fail("{} '{}' has no host; expected HOST:PORT", what, text);
  if (std::any_of(hp.host.begin(), hp.host.end(),
                  [](unsigned char c) { return std::isspace(c); })) {
    fail("{} '{}': the host contains white space", what, text);
  }
  if (!rest.empty()) hp.port = parse_port(rest.substr(1), fmt::format("{} '{}'", what, text));
  return hp;
}

Environment current_environment() {
  Environment env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const size_t eq = kv.find('=');
    if (eq != std::string_view::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

LaunchInfo resolve_launch(const LaunchFlags& f, const Environment& env,
                          const std::vector<std::string>& local_identities) {
  if (!(f.dist_timeout > 0))
    fail("--dist-timeout is {}; it must be a positive number of seconds", f.dist_timeout);
  const std::string mode = pick_mode(f, env);
  LaunchInfo info;
  if (mode == "ips") {
    info = from_ips(f, env, local_identities);
  } else if (mode == "flags") {
    info = from_flags(f, env);
  } else if (mode == "rtp-llm") {
    info = from_rtp(f, env);
  } else if (mode == "openmpi") {
    info = from_openmpi(f, env);
  } else if (mode == "slurm") {
    info = from_slurm(f, env);
  } else if (!f.dist_init_addr.empty()) {
    set_master(info, parse_host_port(f.dist_init_addr, "--dist-init-addr"));
  }
  resolve_parallel(info, f, env);
  return info;
}

LaunchInfo resolve_launch(const LaunchFlags& flags) {
  return resolve_launch(flags, current_environment(), comm::machine_identities());
}

void add_launch_flags(CLI::App& cmd, LaunchFlags& f) {
  cmd.add_option("--tp,--tensor-parallel-size", f.tp, "ranks sharing every layer (default 1)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--pp,--pipeline-parallel-size", f.pp,
                 "pipeline stages, each a contiguous range of layers (default 1)")
      ->check(CLI::Range(1, 4096));
  cmd.add_flag("--enable-expert-parallel", f.enable_expert_parallel,
               "shard a mixture of experts over the --tp ranks by expert (each rank whole experts) "
               "instead of slicing every expert");
  cmd.add_option("--ep-size", f.ep_size, "expert parallel size: 1, or the --tp size (SGLang)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--nnodes", f.nnodes, "nodes in the group (default 1)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--node-rank", f.node_rank, "this node's place in the group (0 = the master)")
      ->check(CLI::Range(0, 4095));
  cmd.add_option("--nproc-per-node", f.nproc_per_node,
                 "ranks this node runs; it starts and supervises them (default 1)")
      ->check(CLI::Range(1, 1024));
  cmd.add_option("--local-rank", f.local_rank, "set by a node's supervisor for each rank it starts")
      ->check(CLI::Range(0, 1023))
      ->group("");
  cmd.add_option(
      "--dist-init-addr", f.dist_init_addr,
      "HOST:PORT of the master's rendezvous, the same on every node (default port 29500)");
  cmd.add_option("--ips", f.ips,
                 "every node's address, the master first; a node finds its rank by its own address")
      ->delimiter(',');
  cmd.add_option("--dist-timeout", f.dist_timeout,
                 "seconds every rank gets to reach the master's rendezvous and to connect (ranks "
                 "that reached it may load their model for longer)")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  cmd.add_option("--dist-step-timeout", f.step_timeout,
                 "seconds a collective may wait while serving before the group is declared broken")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  cmd.add_option("--cluster-token", f.cluster_token, "shared secret every rank must present")
      ->envname("SHARDLM_CLUSTER_TOKEN");
  cmd.add_option("--dist-backend", f.dist_backend,
                 "what carries activations between GPU ranks: nccl (one GPU per rank), gloo "
                 "(host-staged), or auto (nccl where every rank of a group has its own GPU); the "
                 "master's choice applies to the group")
      ->envname("SHARDLM_DIST_BACKEND")
      ->check(CLI::IsMember({"auto", "nccl", "gloo"}))
      ->capture_default_str();
}

}  // namespace shardlm::parallel
