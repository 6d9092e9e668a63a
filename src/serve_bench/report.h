// A benchmark's report: its parameters and one entry per run (a concurrency level of a sweep, a
// batch size offline), written as a terminal table and as JSON. The JSON shape is the same for
// `bench serve` and `bench offline`, and versioned by its "schema" field:
//
//   {"schema": "shardlm.bench.v1", "benchmark": "serve" | "offline", "parameters": {...},
//    "runs": [{"setting": {...}, "duration_s", "completed", "failed", "total_input_tokens",
//              "total_output_tokens", "request_throughput", "input_throughput",
//              "output_throughput", "total_token_throughput", "peak_concurrency",
//              "ttft_ms" | "tpot_ms" | "itl_ms" | "e2e_ms": {"count", "mean", "median", "p90",
//              "p99", "max"},
//              "errors": [{"message", "count"}],
//              "requests": [{"index", "ok", "error", "scheduled_s", "start_s", "ttft_ms", "e2e_ms",
//                            "prompt_tokens", "output_tokens", "expected_output_tokens",
//                            "itl_ms": [...]}]}]}
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "serve_bench/stats.h"

namespace shardlm::serve_bench {

inline constexpr const char* kReportSchema = "shardlm.bench.v1";

struct RunResult {
  nlohmann::json setting = nlohmann::json::object();  // e.g. {"max_concurrency": 4}
  RunMetrics metrics;
  std::vector<RequestRecord> requests;
};

struct BenchReport {
  std::string benchmark;  // "serve" or "offline"
  nlohmann::json parameters = nlohmann::json::object();
  std::vector<RunResult> runs;
};

// Distinct error messages with how many requests failed with each, most frequent first.
std::vector<std::pair<std::string, int>> error_counts(const std::vector<RequestRecord>& requests);

nlohmann::json to_json(const BenchReport& report);
// Throws Error when the file cannot be written.
void write_json(const BenchReport& report, const std::string& path);

// vLLM-style result block for one run.
std::string format_run(const RunResult& run, const std::string& title);
// A Markdown table with one row per run (for sweeps and docs/benchmarks.md).
std::string format_runs_table(const BenchReport& report);

// "max_concurrency=4, request_rate=inf" from a run's setting.
std::string setting_label(const nlohmann::json& setting);
// A JSON scalar as a person writes it: strings unquoted, null as "none", infinity as "inf".
std::string scalar_text(const nlohmann::json& value);

}  // namespace shardlm::serve_bench
