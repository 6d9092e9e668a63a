// The pieces every launch reader shares (internal to parallel/launch_*.cpp): environment lookups
// and number parsing that name the flag or variable behind each value, placing this process on
// its node, and the master's address; and the readers themselves, one file per launch style:
// launch_flags (SGLang's --nnodes/--node-rank), launch_ips (FastDeploy's --ips), launch_rtp
// (rtp-llm's variables), launch_openmpi (mpirun), launch_slurm (srun). resolve_launch
// (launch_env.cpp) picks one.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parallel/launch_env.h"

namespace shardlm::parallel::launch {

// ---- values and names ----------------------------------------------------------------------

const std::string* lookup(const Environment& env, const char* name);

bool has(const Environment& env, const char* name);

// The first of `names` that is set (the last when none is): the variable that chose a mode.
const char* first_set(const Environment& env, std::initializer_list<const char*> names);

int parse_int(std::string_view text, std::string_view what);

int parse_port(std::string_view text, std::string_view what);

std::optional<int> env_int(const Environment& env, const char* name);

// A variable the launcher that set `trigger` always sets too.
int require_env_int(const Environment& env, const char* name, const char* trigger);

void check_positive(int value, std::string_view name);

void check_below(int value, std::string_view name, int bound, std::string_view bound_name);

// A flag must agree with the launcher's value; returns the one that was given (`fallback` if
// neither).
int agree(std::optional<int> flag, std::string_view flag_name, std::optional<int> env_value,
          std::string_view env_name, int fallback);

// ---- placing this process and finding the master --------------------------------------------

// The local rank the supervisor gave a child: --local-rank, else SHARDLM_LOCAL_RANK.
std::optional<std::pair<int, std::string>> given_local_rank(const LaunchFlags& f,
                                                            const Environment& env);

// One process per node that holds `per_node` ranks: a supervisor's child when a local rank was
// given, else the supervisor itself (or the only rank when per_node is 1).
void place_on_node(LaunchInfo& info, int nnodes, int node_rank, int per_node,
                   std::string_view per_node_name, const LaunchFlags& f, const Environment& env);

// What a per-rank launcher (mpirun, srun) says about this process, with the variables' names.
struct LauncherRank {
  int rank, world, local_rank, local_size;
  std::string rank_name, world_name, local_rank_name, local_size_name, layout_hint;
};

// Checks a per-rank launcher's numbers and places this process, or -- when the launcher started
// one task per node and --nproc-per-node asks for more -- makes it that node's supervisor.
void place_launched_rank(LaunchInfo& info, const LauncherRank& r, const LaunchFlags& f,
                         const Environment& env);

// "[fe80::1]" -> "fe80::1".
std::string unbracket(const std::string& host);

// --dist-init-addr, else (when `use_master_env`) MASTER_ADDR with MASTER_PORT.
std::optional<HostPort> explicit_master(const LaunchFlags& f, const Environment& env,
                                        bool use_master_env);

int master_port_env(const Environment& env);

void set_master(LaunchInfo& info, const HostPort& m);

// Modes without a list of nodes: the explicit address, else localhost for a one-node group.
void set_master_or_fail(LaunchInfo& info, const LaunchFlags& f, const Environment& env,
                        std::string_view how);

// Ranks on each node: --nproc-per-node, else (as SGLang and FastDeploy read --tp) the whole
// group's --tp x --pp spread evenly over the nodes.
int ranks_per_node(const LaunchFlags& f, int nnodes);

// ---- the readers: this process's place and the master, from one launch style ----------------

LaunchInfo from_flags(const LaunchFlags& f, const Environment& env);

LaunchInfo from_ips(const LaunchFlags& f, const Environment& env,
                    const std::vector<std::string>& local);

LaunchInfo from_rtp(const LaunchFlags& f, const Environment& env);

LaunchInfo from_openmpi(const LaunchFlags& f, const Environment& env);

LaunchInfo from_slurm(const LaunchFlags& f, const Environment& env);

}  // namespace shardlm::parallel::launch
