// `shardlm bench serve`: flags for the serving benchmark client (src/serve_bench/).
#include "app/cmd_bench_serve.h"

#include <cmath>
#include <memory>

#include "core/error.h"
#include "serve_bench/serve_benchmark.h"

namespace shardlm::app {

namespace {

using serve_bench::ServeBenchOptions;

struct ServeFlags {
  ServeBenchOptions options;
  std::string request_rate = "inf";
  bool no_ignore_eos = false;
  bool no_progress = false;
};

double parse_rate(const std::string& text) {
  if (text == "inf" || text == "infinity") return INFINITY;
  try {
    size_t used = 0;
    const double rate = std::stod(text, &used);
    if (used == text.size() && rate > 0) return rate;
  } catch (const std::exception&) {
  }
  fail("--request-rate must be a positive number of requests per second or inf, got '{}'", text);
}

void add_server_flags(CLI::App& cmd, ServeBenchOptions& o) {
  cmd.add_option("--base-url", o.base_url, "server URL")->capture_default_str();
  cmd.add_option("--endpoint", o.endpoint, "/v1/completions or /v1/chat/completions")
      ->capture_default_str();
  cmd.add_option("--model", o.model, "model name sent in requests (default: the server's first)");
  cmd.add_option("--api-key", o.api_key, "bearer token")->envname("OPENAI_API_KEY");
  cmd.add_option("--tokenizer", o.tokenizer,
                 "measure prompts with this local model's tokenizer instead of the server's "
                 "/tokenize");
  cmd.add_option("--timeout", o.timeout, "seconds each request may take")->capture_default_str();
  cmd.add_option("--temperature", o.temperature, "sampling temperature")->capture_default_str();
  cmd.add_option("--extra-body", o.extra_body, "JSON object merged into every request body");
}

void add_dataset_flags(CLI::App& cmd, serve_bench::DatasetOptions& d) {
  cmd.add_option("--dataset", d.name, "random | prefix | sharegpt | jsonl")
      ->check(CLI::IsMember({"random", "prefix", "sharegpt", "jsonl"}))
      ->capture_default_str();
  cmd.add_option("--dataset-path", d.path, "ShareGPT JSON or JSON Lines file");
  cmd.add_option("--num-prompts", d.num_prompts, "requests per run")->capture_default_str();
  cmd.add_option("--input-len", d.input_len, "random: prompt tokens; prefix: tokens after it")
      ->capture_default_str();
  cmd.add_option("--output-len", d.output_len,
                 "max_tokens (0: 128, or the reference answer's length for sharegpt)")
      ->capture_default_str();
  cmd.add_option("--range-ratio", d.range_ratio, "lengths uniform in len*(1 +- ratio)")
      ->capture_default_str();
  cmd.add_option("--prefix-len", d.prefix_len, "prefix: tokens shared in a group")
      ->capture_default_str();
  cmd.add_option("--num-prefixes", d.num_prefixes, "prefix: number of groups")
      ->capture_default_str();
}

void add_load_flags(CLI::App& cmd, ServeFlags& f) {
  ServeBenchOptions& o = f.options;
  cmd.add_option("--request-rate", f.request_rate, "requests per second (Poisson), or inf")
      ->capture_default_str();
  cmd.add_option("--burstiness", o.burstiness, "gamma shape of inter-arrival gaps (1 = Poisson)")
      ->capture_default_str();
  cmd.add_option("--max-concurrency", o.max_concurrency, "requests in flight at most (0: no limit)")
      ->capture_default_str();
  cmd.add_option("--sweep-concurrency", o.sweep_concurrency,
                 "run once per max-concurrency level, e.g. 1,4,16")
      ->delimiter(',');
  cmd.add_option("--warmup", o.warmup, "unmeasured requests sent first")->capture_default_str();
  cmd.add_option("--seed", o.seed, "dataset and arrival seed")->capture_default_str();
  cmd.add_flag("--no-ignore-eos", f.no_ignore_eos, "let requests stop at EOS");
}

void add_output_flags(CLI::App& cmd, ServeFlags& f) {
  cmd.add_option("--result-json", f.options.result_json, "write every figure and parameter here");
  cmd.add_option("--plot", f.options.plot, "write an SVG chart here");
  cmd.add_flag("--no-progress", f.no_progress, "no progress bar on stderr");
}

}  // namespace

void add_bench_serve_command(CLI::App& bench) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd =
      bench.add_subcommand("serve", "benchmark a running OpenAI-compatible server (streaming)");
  add_server_flags(*cmd, f->options);
  add_dataset_flags(*cmd, f->options.dataset);
  add_load_flags(*cmd, *f);
  add_output_flags(*cmd, *f);
  cmd->callback([f] {
    ServeBenchOptions o = f->options;
    o.request_rate = parse_rate(f->request_rate);
    o.ignore_eos = !f->no_ignore_eos;
    o.progress = !f->no_progress;
    serve_bench::run_serve_benchmark(o);
  });
}

}  // namespace shardlm::app
