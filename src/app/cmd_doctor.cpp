// `shardlm doctor`: checks a group before serving it (dist/doctor.h), with serve's launch flags.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "app/commands.h"
#include "app/default_model.h"
#include "app/flag_names.h"
#include "app/peer_flags.h"
#include "fleet/fleet_doctor.h"
#include "model/model.h"
#include "model/weights_fingerprint.h"
#include "parallel/cluster_token.h"
#include "parallel/data_parallel.h"
#include "parallel/doctor.h"
#include "parallel/launch_env.h"
#include "parallel/supervisor.h"

namespace shardlm::app {

namespace {

struct DoctorArgs {
  parallel::LaunchFlags launch;
  parallel::DataParallelFlags dp;
  std::string model;
  std::string load_format = "auto";
  bool no_model = false;
  bool verify_weights = false;
  double probe_timeout = 2;
  std::string etcd_endpoints;  // a fleet to check instead of a group
  std::string nats_server;
  std::vector<std::string> serve_only;  // the values of serve's flags, unused
  struct PeerSinks {                    // what serve's other-engine flags would set, unused
    int max_num_batched_tokens = 0;
    bool disable_log_stats = false;
    std::string chat_template, generation_config;
    std::optional<uint64_t> seed;
    bool enable_auto_tool_choice = false;
  } peer;
  std::string model_tag;                // `doctor MODEL`
};

// `--dp N`: the layout, then the checks of one replica's group (every replica's is alike: the
// same ranks on this node, each with its own rendezvous port chosen at start-up).
void print_data_parallel(DoctorArgs& a) {
  const parallel::DataParallelLayout l =
      parallel::settle_data_parallel(a.dp, a.launch, parallel::current_environment());
  if (l.dp == 1) return;
  a.launch.nproc_per_node.reset();  // it counted every replica's ranks; the checks take one's
  if (std::getenv(parallel::kLocalRankVariable)) return;  // a rank of the checked group
  fmt::print("data parallel: {}; load balance {}\n", l.describe(),
             parallel::load_balance_method_name(l.method));
  fmt::print("each replica is its own process{} with its own API port on 127.0.0.1{}; the "
             "checks below are for one replica's layout (pp {} x tp {})\n",
             l.ranks_per_replica() > 1 ? " group" : "",
             l.ranks_per_replica() > 1 ? " and rendezvous port" : "", l.pp, l.tp);
  std::fflush(stdout);  // before the checked ranks' own lines
}

int run(DoctorArgs& a) {
  take_model_tag(a.model_tag, a.model);
  if (!a.etcd_endpoints.empty() || !a.nats_server.empty()) {
    return fleet::run_fleet_doctor(a.etcd_endpoints, a.nats_server);
  }
  print_data_parallel(a);
  const parallel::LaunchInfo info = parallel::resolve_launch(a.launch);
  parallel::settle_cluster_token(info, a.launch);
  const std::string model = a.no_model ? "" : resolve_model(a.model, a.load_format);
  if (info.supervisor) return parallel::supervise_local_ranks({info.local_world_size, false, 5});
  parallel::DoctorOptions o;
  if (!model.empty()) {
    const auto m = load_model(model, a.load_format);
    parallel::validate_parallel(info.parallel, info.world_size, info.nnodes, m->config);
    const HashCache cache = a.verify_weights ? HashCache::refresh : HashCache::use;
    o.fingerprint = weights_fingerprint(*m, cache).str();
    if (a.verify_weights)
      fmt::print("weights of {}: fingerprint {} (every file hashed again)\n", model, o.fingerprint);
  }
  if (info.world_size == 1) {
    fmt::print("shardlm doctor: one rank ({} launch); nothing to check across nodes\n", info.mode);
    return 0;
  }
  o.group = parallel::GroupOptions::from_launch(info, a.launch);
  o.probe_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.probe_timeout * 1000));
  return parallel::run_doctor(o);
}

// serve's flags that mean nothing to doctor, accepted so that the same command line runs both
// (docs/deployment.md says to run doctor with serve's flags).
void add_serve_only_flags(CLI::App& cmd, std::vector<std::string>& sink) {
  auto* ignored = cmd.add_option_group("serve flags (accepted, unused by doctor)");
  std::vector<std::string> options = {
      "--host", "--port", "-t,--threads", "--api-key", "--served-model-name",
      flag_names::kMaxModelLen, flag_names::kMaxNumSeqs, flag_names::kMaxNumBatchedTokens,
      "--block-size", "--kv-cache-memory", flag_names::kGpuMemoryUtilization, "--log-interval",
      "--shutdown-grace", "--metrics-port", "--max-connections", "--max-request-bytes",
      "--device", "--grammar-backend", "--tool-call-parser", "--reasoning-parser",
      "--disaggregation-mode", "--kv-transfer-port", "--quantization", "--kv-cache-dtype"};
  std::vector<std::string> flags = {flag_names::kNoPrefixCaching, flag_names::kEnforceEager,
                                    "--is-prefill-worker"};
  for (const std::string& name : options) {
    ignored->add_option(name, sink)->description("serve's flag; no effect on doctor");
  }
  for (const std::string& name : flags) {
    ignored->add_flag(name)->description("serve's flag; no effect on doctor");
  }
}

}  // namespace

void add_doctor_command(CLI::App& app) {
  auto a = std::make_shared<DoctorArgs>();
  CLI::App* cmd = app.add_subcommand(
      "doctor",
      "check a multi-node group before serving: reachability, interfaces, /dev/shm, versions, "
      "model fingerprints, all-reduce and link timings (run on every node with serve's flags)");
  cmd->add_option("-m,--model,--model-path", a->model,
                  "model to fingerprint (default: the default model)");
  cmd->add_option("model_tag", a->model_tag, "the model as the first argument (vllm serve's way)");
  add_load_format_flag(*cmd, a->load_format);
  cmd->add_flag("--no-model", a->no_model, "skip the model fingerprint check");
  cmd->add_flag("--verify-weights", a->verify_weights,
                "hash every weight file again instead of trusting the cached hashes");
  cmd->add_option("--probe-timeout", a->probe_timeout, "seconds per reachability probe")
      ->check(CLI::Range(0.1, 60.0));
  // Doctor answers within 30 s even when a rank never arrives: 20 s for the hellos, then the
  // probes. Set first so --help shows it.
  a->launch.dist_timeout = 20;
  parallel::add_launch_flags(*cmd, a->launch);
  parallel::add_data_parallel_flags(*cmd, a->dp);
  cmd->add_option("--etcd-endpoints", a->etcd_endpoints,
                  "check a fleet instead: etcd (host:2379), its registered workers");
  cmd->add_option("--nats-server", a->nats_server, "check a fleet's NATS server (nats://host:4222)");
  add_serve_only_flags(*cmd, a->serve_only);
  DoctorArgs::PeerSinks& p = a->peer;
  add_peer_flags(*cmd, {p.max_num_batched_tokens, p.disable_log_stats, p.chat_template,
                        p.generation_config, p.seed, p.enable_auto_tool_choice});
  cmd->callback([a] { std::exit(run(*a)); });
}

}  // namespace shardlm::app
