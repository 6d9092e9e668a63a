// `shardlm bench offline`: prefill tokens/s for a P-token prompt and decode tokens/s for N tokens
// at batch 1, at each requested thread count, plus peak RSS (the figures docs/benchmarks.md
// records).
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <iostream>
#include <numeric>

#include "app/commands.h"
#include "app/model_session.h"
#include "core/error.h"

namespace shardlm::app {

namespace {

struct BenchOptions {
  SessionOptions session;
  std::vector<int> threads = {1, 2};
  int prompt_tokens = 512;
  int gen_tokens = 128;
  int reps = 3;
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

void bench_threads(const BenchOptions& o, int threads) {
  SessionOptions so = o.session;
  so.threads = threads;
  so.batch_size = std::max(o.prompt_tokens, 1);
  so.ctx_size = o.prompt_tokens + o.gen_tokens + 16;
  ModelSession s = open_session(so);
  const auto prompt = bench_prompt(o.prompt_tokens, s.model->config.vocab_size);
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.ignore_eos = true;
  std::vector<double> pp, tg;
  GenerationStats st;
  auto keep_going = [](int32_t) { return true; };
  for (int r = 0; r < o.reps + 1; ++r) {  // first round warms up
    greedy.max_tokens = 0;
    s.generator->generate(prompt, greedy, keep_going, st);
    if (r > 0) pp.push_back(st.prompt_tokens / st.prefill_seconds);
    greedy.max_tokens = o.gen_tokens + 1;
    s.generator->generate({prompt[0]}, greedy, keep_going, st);
    if (r > 0) tg.push_back((st.generated_tokens - 1) / st.decode_seconds);
  }
  std::cout << fmt::format("| {} | {} | pp{} | {:.1f} |\n", s.model->config.name, threads,
                           o.prompt_tokens, median(pp))
            << fmt::format("| {} | {} | tg{} | {:.1f} |\n", s.model->config.name, threads,
                           o.gen_tokens, median(tg));
}

void run_bench(const BenchOptions& o) {
  std::cout << "| model | threads | test | tokens/s |\n|---|---|---|---|\n";
  for (int t : o.threads) bench_threads(o, t);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::cout << fmt::format("\npeak RSS: {:.1f} MiB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  auto o = std::make_shared<BenchOptions>();
  CLI::App* off = bench->add_subcommand("offline", "prefill and decode speed of the local engine");
  off->add_option("-m,--model", o->session.model, "GGUF file or Hugging Face model directory");
  off->add_option("-t,--threads", o->threads, "thread counts to measure")->delimiter(',');
  off->add_option("-p,--prompt-tokens", o->prompt_tokens, "prompt length")
      ->check(CLI::Range(1, 65536));
  off->add_option("-n,--gen-tokens", o->gen_tokens, "tokens to decode")
      ->check(CLI::Range(1, 65536));
  off->add_option("-r,--reps", o->reps, "repetitions (median reported)")->check(CLI::Range(1, 100));
  off->callback([o] { run_bench(*o); });
}

}  // namespace shardlm::app
