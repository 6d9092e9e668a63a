// Offline engine benchmark over shardlm::LLM.
#include "serve_bench/offline_benchmark.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <random>

#include "backend/make_backend.h"
#include "core/error.h"
#include "engine/llm.h"

namespace shardlm::serve_bench {

namespace {

// Distinct random prompts of ordinary (non-special) tokens, so that no prefix is shared.
std::vector<std::vector<int32_t>> random_prompts(const OfflineBenchOptions& o,
                                                 const Tokenizer& tok) {
  std::vector<int32_t> vocab;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (!tok.is_special(id)) vocab.push_back(id);
  }
  if (vocab.empty()) fail("the model's vocabulary has no ordinary tokens to build prompts from");
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<size_t> pick(0, vocab.size() - 1);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(o.num_prompts));
  for (auto& p : prompts) {
    p.resize(static_cast<size_t>(o.input_len));
    for (int32_t& id : p) id = vocab[pick(rng)];
  }
  return prompts;
}

RequestRecord record_of(const GenerateOutput& g, double run_start) {
  RequestRecord r;
  const RequestTimes& t = g.times;
  r.ok = true;
  r.start = t.arrival - run_start;
  r.ttft = t.first_token > 0 ? t.first_token - t.arrival : 0;
  r.e2e = t.finished - t.arrival;
  r.prompt_tokens = static_cast<int64_t>(g.prompt_token_ids.size());
  r.output_tokens = static_cast<int64_t>(g.token_ids.size());
  r.usage_reported = true;
  return r;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// The engine args' view of the step budget the options give (for the report).
EngineArgs step_args(const OfflineBenchOptions& o) {
  EngineArgs a;
  a.device = o.device;
  a.max_num_batched_tokens = o.max_num_batched_tokens;
  return a;
}

RunResult run_one(const OfflineBenchOptions& o, int threads, int batch_size) {
  EngineArgs args;
  args.model = o.model;
  args.load_format = o.load_format;
  args.threads = threads;
  args.max_num_seqs = batch_size;
  args.max_model_len = o.input_len + o.output_len + 1;
  args.device = o.device;
  args.max_num_batched_tokens = std::max(step_tokens(step_args(o)), batch_size);
  if (o.kv_cache_memory > 0) args.kv_cache_memory = o.kv_cache_memory;
  args.gpu_memory_utilization = o.gpu_memory_utilization;
  args.enforce_eager = o.enforce_eager;
  args.quantization = o.quantization;
  args.kv_cache_dtype = o.kv_cache_dtype;
  LLM llm(args);
  SamplingParams params;
  params.temperature = 0;
  params.ignore_eos = true;
  params.max_tokens = o.output_len;
  const auto prompts = random_prompts(o, llm.tokenizer());
  const double start = now_seconds();  // the engine stamps requests with the same clock
  const auto outputs = llm.generate(prompts, params);
  const double duration = now_seconds() - start;
  RunResult run;
  run.setting = {{"batch_size", batch_size}, {"threads", threads}};
  for (size_t i = 0; i < outputs.size(); ++i) {
    run.requests.push_back(record_of(outputs[i], start));
    run.requests.back().index = static_cast<int>(i);
    run.requests.back().expected_output_tokens = o.output_len;
  }
  run.metrics = compute_metrics(run.requests, duration);
  return run;
}

void check(const OfflineBenchOptions& o) {
  if (o.num_prompts < 1) fail("--num-prompts must be at least 1, got {}", o.num_prompts);
  for (int b : o.batch_sizes) {
    if (b < 1) fail("--batch-sizes must be at least 1 each, got {}", b);
  }
  for (int t : o.threads) {
    if (t < 0) fail("--threads must be positive, got {}", t);
  }
}

}  // namespace

BenchReport run_offline_benchmark(const OfflineBenchOptions& o) {
  check(o);
  BenchReport report{"offline",
                     {{"model", o.model},
                      {"threads", o.threads},
                      {"batch_sizes", o.batch_sizes},
                      {"num_prompts", o.num_prompts},
                      {"input_len", o.input_len},
                      {"output_len", o.output_len},
                      {"max_num_batched_tokens", step_tokens(step_args(o))},
                      {"seed", o.seed},
                      {"device", std::string(device_name(resolve_device(o.device)))},
                      {"load_format", o.load_format},
                      {"ignore_eos", true},
                      {"temperature", 0}},
                     {}};
  for (int threads : o.threads) {
    for (int b : o.batch_sizes) {
      report.runs.push_back(run_one(o, threads, b));
      std::cout << format_run(report.runs.back(), "Offline Benchmark Result") << std::flush;
    }
  }
  if (report.runs.size() > 1) std::cout << "\n" << format_runs_table(report);
  return report;
}

}  // namespace shardlm::serve_bench
