// `shardlm frontend`: the fleet's OpenAI API in front of the workers registered in etcd
// (fleet/frontend.h), with the Dynamo guide's flag and variable names.
#include <sstream>

#include "app/commands.h"
#include "fleet/frontend.h"

namespace shardlm::app {

namespace {

struct FrontendOptions {
  fleet::FrontendArgs args;
  std::string mode = "round-robin";
  std::vector<std::string> served;
};

void add_routing_flags(CLI::App& cmd, FrontendOptions& o) {
  fleet::FrontendArgs& a = o.args;
  cmd.add_option("--router-mode", o.mode, "round-robin | random | kv (KV-cache-aware)")
      ->check(CLI::IsMember({"round-robin", "random", "kv"}))
      ->capture_default_str();
  cmd.add_option("--kv-overlap-score-weight", a.weights.overlap_weight,
                 "kv mode: weight of the blocks to prefill against the blocks in use")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  cmd.add_option("--router-temperature", a.weights.temperature,
                 "kv mode: 0 picks the lowest cost; above 0 draws from softmax(-cost/T)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  cmd.add_option("-m,--model", a.model,
                 "the workers' model file or directory: its tokenizer and chat template give "
                 "prompts' KV block hashes (needed by --router-mode kv)");
  cmd.add_option("--served-model-name", o.served,
                 "route only these models (default: every model registered); others are "
                 "ignored with a log line");
  cmd.add_option("--max-attempts", a.max_attempts,
                 "workers tried for a request before its first output")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd.add_option("--migration-limit", a.migration_limit,
                 "times a stream moves to another worker when its worker dies mid-stream (it "
                 "continues from the tokens sent; 0: the client gets an error event and [DONE])")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd.add_option("--down-for", a.down_for,
                 "seconds a worker that refused a connection is left out")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd.add_option("--prefill-timeout", a.prefill_timeout,
                 "seconds a disaggregated request's prefill (and KV transfer) may take before "
                 "the next prefill worker is tried")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd.add_option("--poll-interval", a.poll_interval, "seconds between etcd polls")
      ->check(CLI::Range(0.05, 60.0))
      ->capture_default_str();
}

void add_service_flags(CLI::App& cmd, FrontendOptions& o) {
  fleet::FrontendArgs& a = o.args;
  cmd.add_option("--etcd-endpoints", a.etcd_endpoints, "etcd of the fleet (host:2379[,...])")
      ->envname("ETCD_ENDPOINTS")
      ->required();
  cmd.add_option("--nats-server", a.nats_server,
                 "NATS server the workers publish KV events on (nats://host:4222)")
      ->envname("NATS_SERVER");
  cmd.add_option("--host,--http-host", a.http.host,
                 "address to listen on (--http-host: Dynamo's frontend)")
      ->capture_default_str();
  cmd.add_option("--port,--http-port", a.http.port,
                 "port (0 = any free port; --http-port: Dynamo's frontend)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd.add_option("--max-connections", a.http.max_threads, "open connections served at once")
      ->check(CLI::Range(1, 65536));
}

}  // namespace

void add_frontend_command(CLI::App& app) {
  auto o = std::make_shared<FrontendOptions>();
  CLI::App* cmd = app.add_subcommand(
      "frontend", "OpenAI API in front of the workers registered in etcd (a serving fleet)");
  add_routing_flags(*cmd, *o);
  add_service_flags(*cmd, *o);
  cmd->callback([o] {
    o->args.mode = fleet::parse_router_mode(o->mode);
    o->args.allowed_models = {o->served.begin(), o->served.end()};
    std::exit(fleet::run_frontend(o->args));
  });
}

}  // namespace shardlm::app
