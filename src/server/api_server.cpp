// ApiServer start-up, signal handling and shutdown.
#include "server/api_server.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "core/shutdown_signals.h"
#include "server/metrics.h"
#include "server/openai/api_error.h"
#include "server/openai/reasoning_parser.h"
#include "server/openai/responses.h"
#include "server/openai/routes.h"
#include "server/openai/tool_parsers.h"
#include "server/request_defaults.h"
#include "server/shutdown_watch.h"
#include "server/stats_logger.h"
#include "server/web_routes.h"
#include "server/worker_node.h"
#include "engine/engine_args.h"

namespace shardlm::server {

namespace {

// /health: 200 while the engine can serve; 503 with the reason once a step failed (a rank died).
void add_basic_routes(HttpServer& http, const AsyncEngine& engine, const ServerMetrics& metrics,
                      bool with_metrics) {
  http.get(
      "/health",
      [&engine](const httplib::Request&, httplib::Response& res) {
        if (const std::string fatal = engine.fatal_error(); !fatal.empty()) {
          res.status = 503;
          res.set_content(to_wire(error_body(503, "unhealthy: " + fatal)), "application/json");
        }
      },
      false);
  http.get(
      "/version",
      [](const httplib::Request&, httplib::Response& res) {
        res.set_content(to_wire({{"version", SHARDLM_VERSION}}), "application/json");
      },
      false);
  if (!with_metrics) return;
  http.get(
      "/metrics",
      [&metrics](const httplib::Request&, httplib::Response& res) {
        res.set_content(metrics.render(), "text/plain; version=0.0.4");
      },
      false);
}

ChatTemplate compile_template(const ChatTemplateInfo& info, bool from_flag = false) {
  try {
    return ChatTemplate(info.source.value_or(ChatTemplate::chatml_default()));
  } catch (const std::exception& e) {
    fail("{} does not compile: {}", from_flag ? "--chat-template" : "the model's chat template",
         e.what());
  }
}

// --chat-template, as vLLM reads it: a file's contents, or the argument itself when it is a
// template (it has a '{'); nullopt without the flag. Read and compiled before the model loads, so
// that a wrong path fails in seconds.
std::optional<std::string> chat_template_flag(const std::string& arg) {
  if (arg.empty()) return std::nullopt;
  std::string source;
  if (std::filesystem::is_regular_file(arg)) {
    std::ifstream in(arg);
    source.assign(std::istreambuf_iterator<char>(in), {});
  } else if (arg.find('{') != std::string::npos) {
    source = arg;
  } else {
    fail(
        "--chat-template '{}': no such file (a template given inline has Jinja's {{{{ }}}} or "
        "{{% %}})",
        arg);
  }
  compile_template(ChatTemplateInfo{source, "", ""}, true);
  return source;
}

// The model's template and BOS/EOS texts, with --chat-template's source in place of its own.
ChatTemplateInfo chat_template_for(const Model& model, const std::optional<std::string>& flag) {
  ChatTemplateInfo info = chat_template_info(model);
  if (flag) info.source = *flag;
  return info;
}

void log_request_defaults(const ServerArgs& args, const Json& sampling) {
  if (!sampling.empty()) {
    spdlog::info(
        "sampling defaults from the model's generation_config.json for requests that leave them "
        "out: {} (--generation-config vllm ignores the file)",
        sampling.dump());
  }
  if (args.seed) {
    spdlog::info("--seed {}: requests without a seed get seeds that follow from it in order",
                 *args.seed);
  }
}

// A second signal within this time of the first is the same request arriving twice (a terminal's
// Ctrl-C reaches every process of its group, and a node's supervisor forwards it once more).
constexpr auto kDuplicateSignalWindow = std::chrono::seconds(2);

// Lets requests in flight finish (up to the grace period), then aborts the rest; their streams
// get a final chunk with finish_reason "abort". A later signal (not a duplicate) stops waiting:
// what is still running is aborted the same orderly way.
void drain(AsyncEngine& engine, double grace_seconds) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::milliseconds(static_cast<int64_t>(grace_seconds * 1000));
  while (engine.in_flight() > 0 && Clock::now() < deadline) {
    const int sig = shutdown_signals::wait(std::chrono::milliseconds(20));
    if (sig == 0) continue;
    if (Clock::now() - start < kDuplicateSignalWindow) {
      spdlog::info("{} again: already draining ({} requests in flight, up to {:.0f} s more)",
                   shutdown_signals::name(sig), engine.in_flight(),
                   std::chrono::duration<double>(deadline - Clock::now()).count());
      continue;
    }
    spdlog::info("{} again: not waiting for the rest", shutdown_signals::name(sig));
    break;
  }
  if (engine.in_flight() > 0) spdlog::info("aborting {} requests in flight", engine.in_flight());
  engine.stop();
  // Give the HTTP threads a moment to write the final chunks before the listener closes.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

}  // namespace

// What clients put in "model": the directory's name, a model file's name without its .gguf
// extension, or the argument itself for a preset (`llama-3.1-8b` is not a file with extension
// `.1-8b`).
std::string default_served_name(const std::string& model_path) {
  std::filesystem::path p(model_path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing slash
  if (std::filesystem::is_directory(p)) return p.filename().string();
  if (p.filename() == "config.json" && p.has_parent_path())
    return p.parent_path().filename().string();
  const bool gguf = p.extension() == ".gguf" && std::filesystem::is_regular_file(p);
  return gguf ? p.stem().string() : p.filename().string();
}

namespace {

// The names requests may give besides `name`: --served-model-name's others, or, without that
// flag, the --model argument as written (vLLM and SGLang serve a model under its path, so their
// clients send it).
std::vector<std::string> served_aliases(const ServerArgs& args, const std::string& name) {
  std::vector<std::string> aliases = args.served_model_aliases;
  const std::string& typed = args.engine.model;
  if (args.served_model_name.empty() && !typed.empty() && typed != name) aliases.push_back(typed);
  return aliases;
}

}  // namespace

int run_api_server(const ServerArgs& args) {
  const bool grouped = args.group && args.group->world_size > 1;
  if (grouped && args.group->rank != 0) return run_worker_node(args);
  EngineArgs engine_args = args.engine;
  engine_args.show_progress = false;
  std::shared_ptr<parallel::Group> group;  // outlives the LLM, whose runner uses it
  ShutdownWatch watch(grouped ? "the master (rank 0)" : "the server",
                      [&group](const std::string& reason) {
                        if (group) group->abort_startup(reason);
                      });
  if (grouped) {
    parallel::GroupOptions g = *args.group;
    g.max_batch_tokens = step_tokens(args.engine);
    group = std::make_shared<parallel::Group>(g);
    engine_args.make_runner = group_master_runner(group);
  }
  std::unique_ptr<LLM> llm_ptr;
  std::optional<std::string> template_flag;
  Json sampling_defaults;
  try {
    template_flag = chat_template_flag(args.chat_template);
    sampling_defaults = generation_config_defaults(args.generation_config, args.engine.model);
    llm_ptr = std::make_unique<LLM>(engine_args);
  } catch (const std::exception& e) {
    if (group) group->abort_startup(e.what());
    throw;
  }
  LLM& llm = *llm_ptr;
  const std::string name = args.served_model_name.empty() ? default_served_name(args.engine.model)
                                                          : args.served_model_name;
  const ChatTemplateInfo info = chat_template_for(llm.model(), template_flag);
  const ChatTemplate chat_template = compile_template(info, template_flag.has_value());
  log_request_defaults(args, sampling_defaults);
  const RequestDefaults defaults(sampling_defaults, args.seed);

  ServerMetrics metrics(name);
  if (group) metrics.set_rank_stats_source([group] { return group->rank_stats(); });
  metrics.set_cache_config(std::string(dtype_name(llm.rank().backend().kv_dtype())),
                           llm.rank().kv_shape().block_size, llm.rank().kv_shape().n_blocks);
  StatsLogger stats_logger(args.log_interval);
  if (args.kv_events) llm.engine().set_kv_event_listener(args.kv_events);
  AsyncEngine engine(llm.engine(), [&](const StepReport& r) {
    metrics.on_step(r);
    stats_logger.on_step(r);
    if (args.on_step) args.on_step(r);
  });
  std::atomic<bool> draining{false};
  std::unique_ptr<GrammarCompiler> grammar;
  if (args.grammar_backend == "xgrammar") {
    grammar = std::make_unique<GrammarCompiler>(llm.tokenizer(), llm.runner().vocab_size(),
                                                llm.engine().config().eos_token_ids);
  }
  const ServingContext ctx{engine,        llm.tokenizer(),
                           chat_template, info,
                           name,          llm.engine().config().scheduler.max_model_len,
                           draining,      grammar.get(),
                           find_tool_call_parser(args.tool_call_parser),
                           find_reasoning_parser(args.reasoning_parser),
                           &defaults,
                           served_aliases(args, name)};

  HttpServer http(args.http);
  add_basic_routes(http, engine, metrics, args.metrics_port < 0);
  register_openai_routes(http, ctx);
  register_web_routes(http);
  std::shared_ptr<void> extension = args.extend ? args.extend(http, ctx) : nullptr;
  const int port = http.bind();
  std::unique_ptr<HttpServer> metrics_http;
  if (args.metrics_port >= 0) {
    HttpOptions mo = args.http;
    mo.port = args.metrics_port;
    mo.api_key.clear();
    metrics_http = std::make_unique<HttpServer>(mo);
    add_basic_routes(*metrics_http, engine, metrics, true);
    const int mport = metrics_http->bind();
    spdlog::info("metrics on http://{}:{}/metrics", args.http.host, mport);
  }
  if (group) {
    const bool any =
        args.http.host == "0.0.0.0" || args.http.host == "::" || args.http.host.empty();
    group->publish_api(
        fmt::format("http://{}:{}", any ? args.group->master_host : args.http.host, port));
  }
  std::thread http_thread([&] { http.serve(); });
  std::thread metrics_thread([&] {
    if (metrics_http) metrics_http->serve();
  });
  std::shared_ptr<void> announcement;
  if (args.announce) {
    const auto& g = args.group;
    announcement = args.announce({name, args.http.host, port,
                                  llm.engine().config().blocks.block_size, g ? g->tp : 1,
                                  g ? g->pp : 1, g ? g->world_size : 1});
  }
  int sig = watch.serving_as_master();  // before the line that says so: a signal after it drains
  spdlog::info("serving '{}' on http://{}:{} (OpenAI API under /v1); Ctrl-C to stop", name,
               args.http.host, port);

  if (sig == 0) sig = shutdown_signals::wait();
  spdlog::info("{} received: shutting down (no new requests; {} in flight)",
               shutdown_signals::name(sig), engine.in_flight());
  draining = true;
  announcement.reset();
  drain(engine, args.shutdown_grace);
  http.stop();
  if (metrics_http) metrics_http->stop();
  http_thread.join();
  metrics_thread.join();
  extension.reset();
  spdlog::info("server stopped");
  return 0;
}

}  // namespace shardlm::server
