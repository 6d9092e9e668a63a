// `shardlm bench offline`: prefill tokens/s for a P-token prompt and decode tokens/s for N tokens
// at batch 1, at each requested thread count, plus peak RSS (the figures docs/benchmarks.md
// records). With --batch-sizes / --num-prompts / --result-json it runs the batched engine instead
// (serve_bench/offline_benchmark.h) and reports like `bench serve`; `bench serve` itself lives in
// cmd_bench_serve.cpp.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <iostream>
#include <numeric>

#include "app/cmd_bench_serve.h"
#include "app/commands.h"
#include "app/default_model.h"
#include "app/model_session.h"
#include "app/size_flag.h"
#include "backend/make_backend.h"
#include "core/error.h"
#include "engine/llm.h"
#include "serve_bench/offline_benchmark.h"
#include "serve_bench/report.h"
#include "serve_bench/report_plot.h"

namespace shardlm::app {

namespace {

struct BenchOptions {
  SessionOptions session;
  std::vector<int> threads = {1, 2};
  int prompt_tokens = 512;
  int gen_tokens = 128;
  int reps = 3;
  // The batched-engine mode.
  std::vector<int> batch_sizes;
  int num_prompts = 0;
  int max_num_batched_tokens = 0;  // the device's default
  uint64_t seed = 0;
  std::string result_json;
  std::string kv_cache_memory;
  std::string plot;
  bool threads_given = false;
  bool engine_mode() const {
    return !batch_sizes.empty() || num_prompts > 0 || !result_json.empty() || !plot.empty();
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Deterministic pseudo-random prompt (like llama-bench's random tokens) avoiding special tokens.
std::vector<int32_t> bench_prompt(int n, int vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (auto& id : ids) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    id = static_cast<int32_t>(100 + x % static_cast<uint64_t>(vocab - 100));
  }
  return ids;
}

// Prefill: one prompt of P tokens (admission to its first token); decode: N tokens after a
// one-token prompt (first token to last), each through the engine at batch 1.
void bench_threads(const BenchOptions& o, int threads) {
  SessionOptions so = o.session;
  so.threads = threads;
  so.batch_size = std::max(o.prompt_tokens, 1);
  so.ctx_size = o.prompt_tokens + o.gen_tokens + 16;
  EngineArgs args = engine_args(so, 1);
  args.show_progress = false;
  args.enable_prefix_caching = false;  // every round prefills the whole prompt
  LLM llm(args);
  const std::string& name = llm.model().config.name;
  const auto prompt = bench_prompt(o.prompt_tokens, llm.model().config.vocab_size);
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.ignore_eos = true;
  std::vector<double> pp, tg;
  auto keep_going = [](const TokenEvent&) { return true; };
  for (int r = 0; r < o.reps + 1; ++r) {  // first round warms up
    greedy.max_tokens = 1;
    RequestTimes t = llm.generate_stream(prompt, greedy, keep_going).times;
    if (r > 0) pp.push_back(o.prompt_tokens / (t.first_token - t.first_scheduled));
    greedy.max_tokens = o.gen_tokens + 1;
    t = llm.generate_stream({prompt[0]}, greedy, keep_going).times;
    if (r > 0) tg.push_back(o.gen_tokens / (t.last_token - t.first_token));
  }
  std::cout << fmt::format("| {} | {} | pp{} | {:.1f} |\n", name, threads, o.prompt_tokens,
                           median(pp))
            << fmt::format("| {} | {} | tg{} | {:.1f} |\n", name, threads, o.gen_tokens,
                           median(tg));
}

void run_bench(const BenchOptions& o) {
  std::cerr << "device: " << device_name(resolve_device(o.session.device)) << "\n";
  std::cout << "| model | threads | test | tokens/s |\n|---|---|---|---|\n";
  for (int t : o.threads) bench_threads(o, t);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::cout << fmt::format("\npeak RSS: {:.1f} MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
}

// Many prompts through the continuous-batching engine at each batch size.
void run_engine_bench(const BenchOptions& o) {
  serve_bench::OfflineBenchOptions e;
  e.model = resolve_model(o.session.model, o.session.load_format);
  e.load_format = o.session.load_format;
  if (o.threads_given) e.threads = o.threads;
  e.num_prompts = o.num_prompts > 0 ? o.num_prompts : 32;
  e.batch_sizes = o.batch_sizes.empty() ? std::vector<int>{e.num_prompts} : o.batch_sizes;
  e.input_len = o.prompt_tokens;
  e.output_len = o.gen_tokens;
  e.max_num_batched_tokens = o.max_num_batched_tokens;
  e.seed = o.seed;
  e.device = o.session.device;
  e.gpu_memory_utilization = o.session.gpu_memory_utilization;
  e.enforce_eager = o.session.enforce_eager;
  e.quantization = o.session.quantization;
  e.kv_cache_dtype = o.session.kv_cache_dtype;
  if (!o.kv_cache_memory.empty()) {
    e.kv_cache_memory = parse_size(o.kv_cache_memory, "--kv-cache-memory");
  }
  const serve_bench::BenchReport report = serve_bench::run_offline_benchmark(e);
  if (!o.result_json.empty()) serve_bench::write_json(report, o.result_json);
  if (!o.plot.empty()) serve_bench::write_plot(report, o.plot);
}

void add_engine_flags(CLI::App& off, BenchOptions& o) {
  off.add_option("--batch-sizes", o.batch_sizes,
                 "batched-engine mode: max sequences in a batch, e.g. 1,8,32")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  off.add_option("--num-prompts", o.num_prompts, "batched-engine mode: prompts per run (32)")
      ->check(CLI::Range(1, 1000000));
  off.add_option(
         "--max-num-batched-tokens", o.max_num_batched_tokens,
         "batched-engine mode: tokens per engine step (default 8192 on a GPU, 512 on the CPU)")
      ->check(CLI::Range(1, 65536));
  off.add_option("--seed", o.seed, "batched-engine mode: prompt seed");
  off.add_option("--kv-cache-memory", o.kv_cache_memory,
                 "batched-engine mode: memory for keys and values, e.g. 8GiB (default 512MiB)");
  off.add_option("--result-json", o.result_json, "batched-engine mode: write the JSON report");
  off.add_option("--plot", o.plot, "batched-engine mode: write an SVG chart");
}

}  // namespace

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  auto o = std::make_shared<BenchOptions>();
  CLI::App* off = bench->add_subcommand("offline", "prefill and decode speed of the local engine");
  off->add_option("-m,--model", o->session.model, "GGUF file or Hugging Face model directory");
  CLI::Option* threads =
      off->add_option("-t,--threads", o->threads, "thread counts to measure")->delimiter(',');
  off->add_option("-p,--prompt-tokens,--input-len", o->prompt_tokens, "prompt length")
      ->check(CLI::Range(1, 65536));
  off->add_option("-n,--gen-tokens,--output-len", o->gen_tokens, "tokens to decode")
      ->check(CLI::Range(1, 65536));
  off->add_option("-r,--reps", o->reps, "repetitions (median reported)")->check(CLI::Range(1, 100));
  add_device_flags(*off, o->session.device, o->session.gpu_memory_utilization,
                   o->session.enforce_eager);
  add_quantization_flag(*off, o->session.quantization);
  add_kv_cache_dtype_flag(*off, o->session.kv_cache_dtype);
  add_load_format_flag(*off, o->session.load_format);
  add_engine_flags(*off, *o);
  off->callback([o, threads] {
    o->threads_given = threads->count() > 0;
    if (o->engine_mode()) {
      run_engine_bench(*o);
    } else {
      run_bench(*o);
    }
  });
  add_bench_serve_command(*bench);
}

}  // namespace shardlm::app
