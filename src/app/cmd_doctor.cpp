// `shardlm doctor`: checks a group before serving it (dist/doctor.h), with serve's launch flags.
#include <spdlog/spdlog.h>

#include "app/commands.h"
#include "app/default_model.h"
#include "dist/doctor.h"
#include "dist/launch_env.h"
#include "dist/supervisor.h"
#include "model/model.h"

namespace shardlm::app {

namespace {

struct DoctorArgs {
  dist::LaunchFlags launch;
  std::string model;
  std::string load_format = "auto";
  bool no_model = false;
  double probe_timeout = 2;
};

int run(DoctorArgs& a) {
  const dist::LaunchInfo info = dist::resolve_launch(a.launch);
  const std::string model = a.no_model ? "" : resolve_model(a.model, a.load_format);
  if (info.supervisor) return dist::supervise_local_ranks({info.local_world_size, false, 5});
  dist::DoctorOptions o;
  if (!model.empty()) {
    const auto m = load_model(model, a.load_format);
    dist::validate_parallel(info.parallel, info.world_size, info.nnodes, m->config);
    o.fingerprint = dist::model_fingerprint(*m);
  }
  if (info.world_size == 1) {
    fmt::print("shardlm doctor: one rank ({} launch); nothing to check across nodes\n", info.mode);
    return 0;
  }
  o.group = dist::GroupOptions::from_launch(info, a.launch);
  o.probe_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.probe_timeout * 1000));
  return dist::run_doctor(o);
}

}  // namespace

void add_doctor_command(CLI::App& app) {
  auto a = std::make_shared<DoctorArgs>();
  CLI::App* cmd = app.add_subcommand(
      "doctor",
      "check a multi-node group before serving: reachability, interfaces, /dev/shm, versions, "
      "model fingerprints, all-reduce and link timings (run on every node with serve's flags)");
  cmd->add_option("-m,--model", a->model, "model to fingerprint (default: the default model)");
  add_load_format_flag(*cmd, a->load_format);
  cmd->add_flag("--no-model", a->no_model, "skip the model fingerprint check");
  cmd->add_option("--probe-timeout", a->probe_timeout, "seconds per reachability probe")
      ->check(CLI::Range(0.1, 60.0));
  dist::add_launch_flags(*cmd, a->launch);
  a->launch.dist_timeout = 30;  // doctor answers in seconds; serve waits longer by default
  cmd->callback([a] { std::exit(run(*a)); });
}

}  // namespace shardlm::app
