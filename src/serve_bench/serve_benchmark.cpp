// Orchestration of a serving benchmark: probe, dataset, warm-up, runs, report.
#include "serve_bench/serve_benchmark.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <iostream>
#include <memory>

#include "core/error.h"
#include "serve_bench/arrivals.h"
#include "serve_bench/load_driver.h"
#include "serve_bench/progress_bar.h"
#include "serve_bench/report_plot.h"
#include "serve_bench/request_runner.h"

namespace shardlm::serve_bench {

namespace {

// Everything a run needs, fixed for the whole benchmark.
struct Context {
  const ServeBenchOptions& options;
  RequestOptions request;
  std::unique_ptr<PromptTokenizer> tokenizer;
};

nlohmann::json number_or_inf(double v) {
  return std::isinf(v) ? nlohmann::json("inf") : nlohmann::json(v);
}

nlohmann::json parse_extra_body(const std::string& text) {
  if (text.empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    fail("--extra-body must be a JSON object, e.g. '{{\"top_k\": 1}}', got '{}'", text);
  }
  return j;
}

std::unique_ptr<PromptTokenizer> make_tokenizer(const ServeBenchOptions& o, const Context& ctx) {
  if (!o.tokenizer.empty()) return std::make_unique<LocalTokenizer>(o.tokenizer);
  try {
    return std::make_unique<RemoteTokenizer>(ctx.request.endpoint, ctx.request.model);
  } catch (const Error& e) {
    fail(
        "{}; the benchmark measures prompts with the server's /tokenize: pass --tokenizer PATH "
        "(the served model) to measure them locally instead",
        e.what());
  }
}

// Output token counts for requests whose server reported no usage: the generated text
// re-tokenised, else the number of token chunks.
void count_missing_tokens(std::vector<RequestRecord>& records, const PromptTokenizer& tok) {
  for (RequestRecord& r : records) {
    if (!r.ok || r.usage_reported) continue;
    try {
      r.output_tokens = static_cast<int64_t>(tok.encode(r.generated_text).size());
    } catch (const Error&) {
      r.output_tokens = static_cast<int64_t>(r.itl.size()) + 1;
    }
  }
}

std::vector<RequestRecord> send_all(const Context& ctx, const std::vector<SampleRequest>& samples,
                                    const LoadPlan& plan, const std::string& label,
                                    double* duration) {
  ProgressBar bar(label, samples.size(), ctx.options.progress && stderr_is_terminal());
  auto make_request = [&]() -> RequestFn {
    auto client = std::shared_ptr<httplib::Client>(make_client(ctx.request.endpoint));
    return [&, client](size_t i, std::chrono::steady_clock::time_point start) {
      return run_request(*client, samples[i], ctx.request, start);
    };
  };
  LoadResult result =
      drive_load(plan, make_request, [&](const LoadProgress& p) { bar.update(p.done, p.failed); });
  if (duration) *duration = result.duration;
  return std::move(result.records);
}

DatasetOptions dataset_for(const Context& ctx, uint64_t seed, int num_prompts) {
  DatasetOptions d = ctx.options.dataset;
  d.seed = seed;
  d.num_prompts = num_prompts;
  d.text_prompts = ctx.request.api() == Api::kChat;
  return d;
}

void warm_up(const Context& ctx) {
  const ServeBenchOptions& o = ctx.options;
  if (o.warmup <= 0) return;
  const auto samples =
      make_dataset(dataset_for(ctx, o.seed ^ 0x5eed5eedull, o.warmup), *ctx.tokenizer);
  LoadPlan plan{std::vector<double>(samples.size(), 0.0), std::max(o.max_concurrency, 0)};
  const auto records = send_all(ctx, samples, plan, "warm-up", nullptr);
  const auto errors = error_counts(records);
  if (!errors.empty() && errors.front().second == static_cast<int>(records.size())) {
    fail("every warm-up request failed: {}", errors.front().first);
  }
}

RunResult run_level(const Context& ctx, size_t level, int max_concurrency) {
  const ServeBenchOptions& o = ctx.options;
  const auto samples =
      make_dataset(dataset_for(ctx, o.seed + level, o.dataset.num_prompts), *ctx.tokenizer);
  LoadPlan plan;
  plan.arrivals = arrival_offsets(samples.size(), {o.request_rate, o.burstiness, o.seed + level});
  plan.max_concurrency = max_concurrency;
  RunResult run;
  run.setting = {
      {"max_concurrency", max_concurrency > 0 ? nlohmann::json(max_concurrency) : nlohmann::json()},
      {"request_rate", number_or_inf(o.request_rate)}};
  double duration = 0;
  run.requests = send_all(ctx, samples, plan, "bench", &duration);
  count_missing_tokens(run.requests, *ctx.tokenizer);
  run.metrics = compute_metrics(run.requests, duration);
  return run;
}

nlohmann::json parameters_json(const ServeBenchOptions& o, const Context& ctx) {
  const DatasetOptions& d = o.dataset;
  nlohmann::json p = {{"base_url", o.base_url},
                      {"endpoint", o.endpoint},
                      {"model", ctx.request.model},
                      {"dataset", d.name},
                      {"num_prompts", d.num_prompts},
                      {"request_rate", number_or_inf(o.request_rate)},
                      {"burstiness", o.burstiness},
                      {"max_concurrency", o.max_concurrency},
                      {"sweep_concurrency", o.sweep_concurrency},
                      {"warmup", o.warmup},
                      {"seed", o.seed},
                      {"timeout_s", o.timeout},
                      {"temperature", o.temperature},
                      {"ignore_eos", o.ignore_eos},
                      {"extra_body", ctx.request.extra_body},
                      {"tokenizer", o.tokenizer.empty() ? "server" : o.tokenizer}};
  if (d.name == "random" || d.name == "prefix") {
    p["input_len"] = d.input_len;
    p["range_ratio"] = d.range_ratio;
  }
  if (d.name == "prefix") p["prefix_len"] = d.prefix_len, p["num_prefixes"] = d.num_prefixes;
  if (!d.path.empty()) p["dataset_path"] = d.path;
  p["output_len"] = d.output_len;
  return p;
}

void finish(const BenchReport& report, const ServeBenchOptions& o) {
  if (report.runs.size() > 1) std::cout << "\n" << format_runs_table(report);
  if (!o.result_json.empty()) write_json(report, o.result_json);
  if (!o.plot.empty()) write_plot(report, o.plot);
  int completed = 0, total = 0;
  for (const RunResult& run : report.runs) {
    completed += run.metrics.completed;
    total += run.metrics.completed + run.metrics.failed;
  }
  if (completed == 0) {
    fail("all {} requests failed; the most common error: {}", total,
         error_counts(report.runs.front().requests).front().first);
  }
}

}  // namespace

std::string probe_server(const Endpoint& e, const std::string& model) {
  auto client = make_client(e);
  auto r = client->Get(e.prefix + "/v1/models");
  if (!r) {
    fail("cannot reach the server at {}: {}. Start it (shardlm serve) or pass the right --base-url",
         e.url(""), describe(r.error()));
  }
  if (r->status == 401 || r->status == 403) {
    fail("{} refused the request (HTTP {}): pass its key with --api-key", e.url("/v1/models"),
         r->status);
  }
  if (!model.empty()) return model;
  const auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200 || !j.is_object() || !j.contains("data") || !j["data"].is_array() ||
      j["data"].empty() || !j["data"][0].contains("id") || !j["data"][0]["id"].is_string()) {
    fail("{} did not list a model (HTTP {}): pass --model NAME", e.url("/v1/models"), r->status);
  }
  return j["data"][0]["id"].get<std::string>();
}

BenchReport run_serve_benchmark(const ServeBenchOptions& o) {
  validate(ArrivalOptions{o.request_rate, o.burstiness, o.seed});
  if (o.max_concurrency < 0) fail("--max-concurrency must be positive, got {}", o.max_concurrency);
  for (int level : o.sweep_concurrency) {
    if (level < 1) fail("--sweep-concurrency levels must be at least 1, got {}", level);
  }
  Context ctx{o, {}, nullptr};
  ctx.request.endpoint = Endpoint::parse(o.base_url, o.api_key, o.timeout);
  ctx.request.path = o.endpoint;
  ctx.request.temperature = o.temperature;
  ctx.request.ignore_eos = o.ignore_eos;
  ctx.request.extra_body = parse_extra_body(o.extra_body);
  ctx.request.model = probe_server(ctx.request.endpoint, o.model);
  spdlog::info("benchmarking {} at {}", ctx.request.model, ctx.request.endpoint.url(o.endpoint));
  ctx.tokenizer = make_tokenizer(o, ctx);
  warm_up(ctx);
  BenchReport report{"serve", parameters_json(o, ctx), {}};
  std::vector<int> levels = o.sweep_concurrency;
  if (levels.empty()) levels.push_back(o.max_concurrency);
  for (size_t k = 0; k < levels.size(); ++k) {
    report.runs.push_back(run_level(ctx, k, levels[k]));
    std::cout << format_run(report.runs.back(), "Serving Benchmark Result") << std::flush;
  }
  finish(report, o);
  return report;
}

}  // namespace shardlm::serve_bench
