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
#include "parallel/launch_readers.h"

extern char** environ;

namespace shardlm::parallel {

namespace {

using namespace launch;

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
  info.parallel.tp_exact = f.tp_exact;
  info.parallel.steps_in_flight = f.pp_steps_in_flight;
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
  cmd.add_option("--tp,--tensor-parallel-size,--tp_size", f.tp,
                 "ranks sharing every layer (default 1)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--pp,--pipeline-parallel-size,--pp_size", f.pp,
                 "pipeline stages, each a contiguous range of layers (default 1)")
      ->check(CLI::Range(1, 4096));
  cmd.add_flag("--enable-expert-parallel", f.enable_expert_parallel,
               "shard a mixture of experts over the --tp ranks by expert (each rank whole experts) "
               "instead of slicing every expert");
  cmd.add_option("--ep-size,--ep_size", f.ep_size,
                 "expert parallel size: 1, or the --tp size (SGLang)")
      ->check(CLI::Range(1, 4096));
  cmd.add_flag("--tp-exact", f.tp_exact,
               "exact tensor parallelism: gather activations around O and down so results are "
               "bit-identical to one process (slower; default: Megatron TP, one all-reduce after "
               "O and after down)");
  cmd.add_option("--pp-steps-in-flight", f.pp_steps_in_flight,
                 "with --pp > 1: batches of different requests moving through the pipeline at "
                 "once (default 0 = one per stage; 1 = one step at a time, the stages take turns)")
      ->check(CLI::Range(0, 64));
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
