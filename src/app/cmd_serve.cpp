// `shardlm serve`: the OpenAI-compatible server, with vLLM's flag names.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "app/commands.h"
#include "app/default_model.h"
#include "app/flag_names.h"
#include "app/peer_flags.h"
#include "app/ray_driver.h"
#include "app/size_flag.h"
#include "comm/net_probe.h"
#include "core/error.h"
#include "fleet/dp_controller.h"
#include "fleet/worker_agent.h"
#include "parallel/cluster_token.h"
#include "parallel/data_parallel.h"
#include "parallel/launch_env.h"
#include "parallel/supervisor.h"
#include "server/api_server.h"

namespace shardlm::app {

namespace {

struct ServeOptions {
  server::ServerArgs args;
  parallel::LaunchFlags group;
  parallel::DataParallelFlags dp;
  fleet::FleetFlags fleet;
  std::string kv_cache_memory;  // e.g. "512MiB"; empty: the engine default
  bool no_prefix_caching = false;
  std::string executor = "mp";  // --distributed-executor-backend: mp (our launchers) or ray
  bool enable_auto_tool_choice = false;  // vLLM's flag: needs --tool-call-parser
  bool disable_log_stats = false;        // vLLM's flag: --log-interval 0
  std::string model_tag;  // `serve MODEL`, as vllm serve and trtllm-serve take it
  std::vector<std::string> served_names;  // --served-model-name: the first, then aliases
  CLI::Option* port_option = nullptr;  // to tell a given --port from the default
};

void add_engine_flags(CLI::App& cmd, ServeOptions& o) {
  EngineArgs& e = o.args.engine;
  cmd.add_option("-t,--threads", e.threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  add_device_flags(cmd, e.device, e.gpu_memory_utilization, e.enforce_eager);
  add_quantization_flag(cmd, e.quantization);
  add_kv_cache_dtype_flag(cmd, e.kv_cache_dtype);
  cmd.add_option(flag_names::kMaxModelLen, e.max_model_len,
                 "context length per request (default: the model's, at most 4096; SGLang: "
                 "--context-length, trtllm-serve: --max_seq_len)")
      ->check(CLI::Range(0, 1 << 20));
  cmd.add_option(flag_names::kMaxNumSeqs, e.max_num_seqs,
                 "requests run together in one batch (default 256 on a GPU, 64 on the CPU; "
                 "SGLang: --max-running-requests, trtllm-serve: --max_batch_size)")
      ->check(CLI::Range(1, 4096));
  cmd.add_option(flag_names::kMaxNumBatchedTokens, e.max_num_batched_tokens,
                 "tokens per engine step, prefill chunks and decodes (default 8192 on a GPU, 512 "
                 "on the CPU; trtllm-serve: --max_num_tokens, SGLang: --chunked-prefill-size)")
      ->check(CLI::Range(1, 1 << 20));
  cmd.add_option("--block-size", e.block_size, "tokens per KV cache block")
      ->check(CLI::Range(1, 1024));
  cmd.add_option(
      "--kv-cache-memory", o.kv_cache_memory,
      "memory for keys and values: 512MiB, 2GiB, or 30% of available memory (default 512MiB)");
  cmd.add_flag(flag_names::kNoPrefixCaching, o.no_prefix_caching,
               "turn automatic prefix caching off (SGLang: --disable-radix-cache)");
}

void add_http_flags(CLI::App& cmd, ServeOptions& o) {
  server::ServerArgs& a = o.args;
  cmd.add_option("--host", a.http.host, "address to listen on")->capture_default_str();
  o.port_option = cmd.add_option("--port", a.http.port,
                                 "port (0 = any free port; rtp-llm launches: START_PORT)")
                      ->check(CLI::Range(0, 65535))
                      ->capture_default_str();
  cmd.add_option("--metrics-port", a.metrics_port, "serve /metrics on this port instead")
      ->check(CLI::Range(0, 65535));
  cmd.add_option("--api-key", a.http.api_key, "require 'Authorization: Bearer KEY' on /v1 routes")
      ->envname("SHARDLM_API_KEY");
  cmd.add_option("--served-model-name", o.served_names,
                 "the model name the API reports and accepts (default: the model file's name); "
                 "several names: requests may use any, responses give the first (vLLM)")
      ->expected(1, -1);
  cmd.add_option("--grammar-backend", a.grammar_backend,
                 "structured output (response_format, guided_json, ...): xgrammar, or none to "
                 "answer such requests 400")
      ->check(CLI::IsMember({"xgrammar", "none"}))
      ->capture_default_str();
  cmd.add_option("--tool-call-parser", a.tool_call_parser,
                 "parse tool calls out of the model's output for tool_choice auto (vLLM's names)")
      ->check(CLI::IsMember({"hermes", "qwen", "llama3_json", "llama4_json", "mistral",
                             "qwen3_coder", "deepseek_v3", "pythonic", "llama4_pythonic"}));
  cmd.add_option("--reasoning-parser", a.reasoning_parser,
                 "split <think> sections into reasoning_content")
      ->check(CLI::IsMember({"deepseek_r1", "qwen3"}));
  cmd.add_option("--max-request-bytes", a.http.max_body_bytes,
                 "largest request body accepted (larger ones get 413)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 32));
  cmd.add_option("--max-connections", a.http.max_threads, "open connections served at once")
      ->check(CLI::Range(1, 65536));
  cmd.add_option("--http-header-timeout", a.http.head_timeout,
                 "seconds a client gets to send a request's headers (then 408)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd.add_option("--http-body-timeout", a.http.body_timeout,
                 "seconds a client gets to send a request body (then 408)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd.add_option("--timeout-keep-alive", a.http.keep_alive_timeout,
                 "seconds an idle keep-alive connection stays open")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd.add_option("--log-interval", a.log_interval, "seconds between stats lines (0 = off)")
      ->check(CLI::Range(0.0, 3600.0));
  cmd.add_option("--shutdown-grace", a.shutdown_grace,
                 "seconds requests in flight get to finish on SIGINT/SIGTERM")
      ->check(CLI::Range(0.0, 3600.0));
}

// The group from the launch style (flags, --ips, rtp-llm, OpenMPI, SLURM), or nullopt for one
// process.
std::optional<parallel::GroupOptions> group_options(const parallel::LaunchInfo& info,
                                                    const parallel::LaunchFlags& f) {
  if (info.world_size == 1) return std::nullopt;
  const parallel::GroupOptions g = parallel::GroupOptions::from_launch(info, f);
  spdlog::info(
      "group: rank {} of {} ({} launch), node {} of {}, local rank {}, rendezvous at {}:{}", g.rank,
      g.world_size, info.mode, info.node_rank, info.nnodes, info.local_rank, g.master_host,
      g.master_port);
  return g;
}

// mpirun answers Ctrl-C and SIGTERM itself: SIGCONT, then SIGTERM and SIGKILL a second apart
// (odls_base_sigkill_timeout), too soon to drain; it forwards SIGUSR1 to every rank instead.
void explain_mpirun_stop() {
  spdlog::info(
      "under mpirun, Ctrl-C or SIGTERM to mpirun kills the ranks within about 2 s (its own "
      "SIGTERM-then-SIGKILL), cutting requests in flight; to drain them first, send SIGUSR1 to "
      "mpirun (kill -USR1 <mpirun pid>): it passes it to every rank, the master drains and then "
      "ends the group");
}

// `serve --tp 2` on one machine needs no rendezvous address: the supervisor picks a free port
// (instead of the fixed default, which two such servers on one machine would share) and hands it
// to its ranks through MASTER_ADDR/MASTER_PORT.
void give_one_node_group_a_port(const parallel::LaunchInfo& info, const parallel::LaunchFlags& f) {
  if (info.nnodes != 1 || !f.dist_init_addr.empty() || std::getenv("MASTER_PORT")) return;
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(comm::free_loopback_port()).c_str(), 1);
}

// rtp-llm's START_PORT is its API port: a launch that sets it finds the API there, not on 8000.
void take_start_port(int& port) {
  const char* text = std::getenv("START_PORT");
  if (text == nullptr || *text == '\0') return;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1 || value > 65535) {
    fail("START_PORT is '{}'; it must be a port number (1-65535)", text);
  }
  port = static_cast<int>(value);
}

// `--dp N` (N > 1): this process becomes the data-parallel controller; the replicas run this same
// command without --dp (fleet/dp_controller.h).
[[noreturn]] void run_data_parallel_serve(ServeOptions& o, const parallel::DataParallelLayout& l) {
  if (o.executor == "ray") {
    fail("--dp {} with --distributed-executor-backend ray is not supported; use mp (the default)",
         l.dp);
  }
  if (o.fleet.enabled() || o.fleet.disaggregation != fleet::DisaggregationMode::kAggregated) {
    fail(
        "--dp {} with --etcd-endpoints/--disaggregation-mode is not supported: register N "
         "separate `shardlm serve` workers with the fleet instead",
         l.dp);
  }
  if (o.args.metrics_port >= 0) {
    fail(
        "--metrics-port with --dp {} is not supported: /metrics (with every replica's figures) "
         "is on the API port",
         l.dp);
  }
  resolve_model(o.args.engine.model, o.args.engine.load_format);  // fetch it once, before replicas
  fleet::DataParallelArgs a;
  a.layout = l;
  a.http = o.args.http;
  a.own = parallel::own_command_line();
  a.threads = o.args.engine.threads > 0
                  ? 0
                  : parallel::threads_per_rank(l, std::thread::hardware_concurrency());
  a.start_timeout = std::max(600.0, o.group.dist_timeout * 4);
  a.shutdown_grace = o.args.shutdown_grace;
  std::exit(fleet::run_data_parallel(a));
}

void run_serve(ServeOptions& o) {
  check_auto_tool_choice(o.enable_auto_tool_choice, o.args.tool_call_parser);
  take_model_tag(o.model_tag, o.args.engine.model);
  if (o.disable_log_stats) o.args.log_interval = 0;
  if (!o.served_names.empty()) {
    o.args.served_model_name = o.served_names.front();
    o.args.served_model_aliases.assign(o.served_names.begin() + 1, o.served_names.end());
  }
  const parallel::DataParallelLayout dp =
      parallel::settle_data_parallel(o.dp, o.group, parallel::current_environment());
  if (dp.dp > 1) run_data_parallel_serve(o, dp);
  if (o.executor == "ray") exec_ray_executor();  // the ranks go where Ray places them
  const parallel::LaunchInfo info = parallel::resolve_launch(o.group);
  parallel::settle_cluster_token(info, o.group);
  if (info.mode == "rtp-llm" && o.port_option->count() == 0) take_start_port(o.args.http.port);
  parallel::follow_supervisor();  // a replica's supervisor dies with its --dp controller
  if (info.supervisor) {
    give_one_node_group_a_port(info, o.group);
    resolve_model(o.args.engine.model,
                  o.args.engine.load_format);  // fetch the default model once, before the children
    std::exit(parallel::supervise_local_ranks(
        {info.local_world_size, info.node_rank == 0, o.args.shutdown_grace + 15}));
  }
  if (info.mode == "openmpi" || info.mode == "slurm") parallel::die_with_launcher();
  if (info.mode == "openmpi" && info.rank == 0) explain_mpirun_stop();
  o.args.group = group_options(info, o.group);
  o.args.engine.model = resolve_model(o.args.engine.model, o.args.engine.load_format);
  o.args.engine.enable_prefix_caching = !o.no_prefix_caching;
  if (!o.kv_cache_memory.empty()) {
    o.args.engine.kv_cache_memory = parse_size(o.kv_cache_memory, "--kv-cache-memory");
  }
  if (o.fleet.disaggregation != fleet::DisaggregationMode::kAggregated) {
    if (!o.fleet.enabled()) {
      fail(
          "--disaggregation-mode needs --etcd-endpoints: the frontend finds prefill and decode "
           "workers there");
    }
    if (o.args.group && o.args.group->world_size > 1) {
      fail(
          "--disaggregation-mode needs a single-process worker for now (its KV transfer reads "
           "one cache); drop --tensor-parallel-size / --pipeline-parallel-size");
    }
  }
  std::unique_ptr<fleet::WorkerAgent> agent;  // the group's master registers; other ranks don't
  if (o.fleet.enabled() && (!o.args.group || o.args.group->rank == 0)) {
    agent = std::make_unique<fleet::WorkerAgent>(o.fleet);
    agent->wire(o.args);
  }
  const int status = server::run_api_server(o.args);
  agent.reset();  // the engine has stopped: nothing publishes any more
  std::exit(status);
}

// A fleet (issue 20): register this group's master in etcd and publish KV events on NATS, for
// `shardlm frontend`. The variable names are the Dynamo guide's.
void add_fleet_flags(CLI::App& cmd, fleet::FleetFlags& f) {
  cmd.add_option("--etcd-endpoints", f.etcd_endpoints,
                 "register with the fleet in this etcd (host:2379[,host:2379])")
      ->envname("ETCD_ENDPOINTS");
  cmd.add_option("--nats-server", f.nats_server,
                 "publish KV-cache events and load on this NATS server (nats://host:4222)")
      ->envname("NATS_SERVER");
  cmd.add_option("--lease-ttl", f.lease_ttl,
                 "seconds the etcd registration outlives a worker that stops answering")
      ->check(CLI::Range(2, 600))
      ->capture_default_str();
  cmd.add_option("--advertise-host", f.advertise_host,
                 "the address a frontend dials for this worker (default: --host, or this "
                 "machine's first non-loopback address when listening on 0.0.0.0)");
  cmd.add_option_function<std::string>(
         "--disaggregation-mode",
         [&f](const std::string& m) { f.disaggregation = fleet::parse_disaggregation_mode(m); },
         "this worker's part in disaggregated serving: prefill (computes prompts' KV and sends "
         "it to decode workers) or decode (takes the KV and generates); needs --etcd-endpoints")
      ->check(CLI::IsMember({"prefill", "decode", "aggregated"}));
  cmd.add_flag_callback(
      "--is-prefill-worker", [&f] { f.disaggregation = fleet::DisaggregationMode::kPrefill; },
      "--disaggregation-mode prefill (the Dynamo guide's flag)");
  cmd.add_option("--kv-transfer-port", f.kv_transfer_port,
                 "decode workers: the port prefill workers send KV blocks to (0 = a free port, "
                 "registered in etcd)")
      ->check(CLI::Range(0, 65535));
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server");
  cmd->add_option(
      "-m,--model,--model-path", o->args.engine.model,
      "GGUF file or Hugging Face model directory (default: SmolLM2-135M-Instruct Q4_1); "
      "--model-path is SGLang's name");
  cmd->add_option("model_tag", o->model_tag,
                  "the model as the first argument, as vllm serve and trtllm-serve take it");
  add_peer_flags(*cmd, {o->args.engine.max_num_batched_tokens, o->disable_log_stats,
                        o->args.chat_template, o->args.generation_config, o->args.seed,
                        o->enable_auto_tool_choice});
  add_load_format_flag(*cmd, o->args.engine.load_format);
  add_engine_flags(*cmd, *o);
  add_http_flags(*cmd, *o);
  add_fleet_flags(*cmd, o->fleet);
  parallel::add_launch_flags(*cmd, o->group);
  parallel::add_data_parallel_flags(*cmd, o->dp);
  cmd->add_option("--distributed-executor-backend,--distributed_executor_backend", o->executor,
                  "mp: the ranks start as the launch flags say; ray: on a running Ray cluster "
                  "(ray start --head / --address), placed by the Python Ray executor")
      ->check(CLI::IsMember({"mp", "ray"}));
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace shardlm::app
