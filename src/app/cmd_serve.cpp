// `shardlm serve`: the OpenAI-compatible server, with vLLM's flag names.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "app/commands.h"
#include "app/default_model.h"
#include "app/size_flag.h"
#include "core/error.h"
#include "dist/launch.h"
#include "server/api_server.h"

namespace shardlm::app {

namespace {

struct GroupFlags {
  int tp = 1;
  int pp = 1;
  int nnodes = 1;
  int node_rank = -1;  // -1: not given
  std::string dist_init_addr;
  std::vector<std::string> ips;
  std::string cluster_token;
  double dist_timeout = 300;  // start-up, seconds
};

struct ServeOptions {
  server::ServerArgs args;
  GroupFlags group;
  std::string kv_cache_memory;  // e.g. "512MiB"; empty: the engine default
  bool no_prefix_caching = false;
};

void add_engine_flags(CLI::App& cmd, ServeOptions& o) {
  EngineArgs& e = o.args.engine;
  cmd.add_option("-t,--threads", e.threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  cmd.add_option("--max-model-len", e.max_model_len,
                 "context length per request (default: the model's, at most 4096)")
      ->check(CLI::Range(0, 1 << 20));
  cmd.add_option("--max-num-seqs", e.max_num_seqs, "requests run together in one batch")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--max-num-batched-tokens", e.max_num_batched_tokens,
                 "tokens per engine step (prefill chunks and decodes)")
      ->check(CLI::Range(1, 1 << 20));
  cmd.add_option("--block-size", e.block_size, "tokens per KV cache block")
      ->check(CLI::Range(1, 1024));
  cmd.add_option(
      "--kv-cache-memory", o.kv_cache_memory,
      "memory for keys and values: 512MiB, 2GiB, or 30% of available memory (default 512MiB)");
  cmd.add_flag("--no-prefix-caching", o.no_prefix_caching, "turn automatic prefix caching off");
}

void add_http_flags(CLI::App& cmd, ServeOptions& o) {
  server::ServerArgs& a = o.args;
  cmd.add_option("--host", a.http.host, "address to listen on")->capture_default_str();
  cmd.add_option("--port", a.http.port, "port (0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd.add_option("--metrics-port", a.metrics_port, "serve /metrics on this port instead")
      ->check(CLI::Range(0, 65535));
  cmd.add_option("--api-key", a.http.api_key, "require 'Authorization: Bearer KEY' on /v1 routes")
      ->envname("SHARDLM_API_KEY");
  cmd.add_option("--served-model-name", a.served_model_name,
                 "the model name the API reports and accepts (default: the model file's name)");
  cmd.add_option("--max-request-bytes", a.http.max_body_bytes,
                 "largest request body accepted (larger ones get 413)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 32));
  cmd.add_option("--max-connections", a.http.max_threads, "open connections served at once")
      ->check(CLI::Range(1, 65536));
  cmd.add_option("--log-interval", a.log_interval, "seconds between stats lines (0 = off)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd.add_option("--shutdown-grace", a.shutdown_grace,
                 "seconds requests in flight get to finish on SIGINT/SIGTERM")
      ->check(CLI::Range(0.0, 3600.0));
}

void add_group_flags(CLI::App& cmd, GroupFlags& g) {
  cmd.add_option("--tp,--tensor-parallel-size", g.tp, "ranks sharing each layer (one per node)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--pp,--pipeline-parallel-size", g.pp,
                 "pipeline stages, each a contiguous range of layers (one per node)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--nnodes", g.nnodes, "nodes in the group")->check(CLI::Range(1, 4096));
  cmd.add_option("--node-rank", g.node_rank, "this node's rank (0 = the master)")
      ->check(CLI::Range(0, 4095));
  cmd.add_option(
      "--dist-init-addr", g.dist_init_addr,
      "HOST:PORT of the master's rendezvous, the same on every node (default port 29500)");
  cmd.add_option("--ips", g.ips,
                 "every node's address, master first; a node finds its rank by its own address")
      ->delimiter(',');
  cmd.add_option("--cluster-token", g.cluster_token, "shared secret every node must present")
      ->envname("SHARDLM_CLUSTER_TOKEN");
  cmd.add_option("--dist-timeout", g.dist_timeout, "seconds to wait for every rank at start-up")
      ->check(CLI::Range(1.0, 86400.0));
}

// The group layout from the flags: one rank per node, world size = nnodes = tp x pp.
std::optional<dist::GroupOptions> group_options(const GroupFlags& f) {
  dist::LaunchFlags lf;
  lf.nnodes = f.nnodes;
  if (f.node_rank >= 0) lf.node_rank = f.node_rank;
  lf.dist_init_addr = f.dist_init_addr;
  lf.ips = f.ips;
  const dist::LaunchInfo info = dist::resolve_launch(lf);
  if (f.tp == 1 && f.pp == 1 && info.world_size == 1) return std::nullopt;
  if (f.tp > 1 && f.pp > 1) {
    fail(
        "--tp {} with --pp {}: combining tensor and pipeline parallelism is not supported yet; "
        "use one of them",
        f.tp, f.pp);
  }
  if (f.tp * f.pp != info.world_size) {
    fail(
        "--tp {} x --pp {} = {} ranks but the group has {} ({}); this build runs one rank per "
        "node, so tp x pp must equal the number of nodes",
        f.tp, f.pp, f.tp * f.pp, info.world_size, info.mode);
  }
  dist::GroupOptions g;
  g.rank = info.rank;
  g.world_size = info.world_size;
  g.tp = f.tp;
  g.pp = f.pp;
  g.master_host = info.master_host;
  g.master_port = info.master_port;
  g.token = f.cluster_token;
  g.startup_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.dist_timeout * 1000));
  spdlog::info("group: rank {} of {} ({} launch), rendezvous at {}:{}", g.rank, g.world_size,
               info.mode, g.master_host, g.master_port);
  return g;
}

void run_serve(ServeOptions& o) {
  o.args.group = group_options(o.group);
  o.args.engine.model = resolve_model(o.args.engine.model);
  o.args.engine.enable_prefix_caching = !o.no_prefix_caching;
  if (!o.kv_cache_memory.empty()) {
    o.args.engine.kv_cache_memory = parse_size(o.kv_cache_memory, "--kv-cache-memory");
  }
  std::exit(server::run_api_server(o.args));
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server");
  cmd->add_option(
      "-m,--model", o->args.engine.model,
      "GGUF file or Hugging Face model directory (default: SmolLM2-135M-Instruct Q4_1)");
  add_engine_flags(*cmd, *o);
  add_http_flags(*cmd, *o);
  add_group_flags(*cmd, o->group);
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace shardlm::app
