// Report rendering: JSON and terminal tables.
#include "serve_bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "core/error.h"

namespace shardlm::serve_bench {

namespace {

nlohmann::json summary_json(const Summary& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"median", s.median},
          {"p90", s.p90},     {"p99", s.p99},   {"max", s.max}};
}

nlohmann::json request_json(const RequestRecord& r) {
  std::vector<double> itl_ms;
  for (double x : r.itl) itl_ms.push_back(x * 1e3);
  return {{"index", r.index},
          {"ok", r.ok},
          {"error", r.error},
          {"scheduled_s", r.scheduled},
          {"start_s", r.start},
          {"ttft_ms", r.ttft * 1e3},
          {"e2e_ms", r.e2e * 1e3},
          {"prompt_tokens", r.prompt_tokens},
          {"output_tokens", r.output_tokens},
          {"expected_output_tokens", r.expected_output_tokens},
          {"itl_ms", itl_ms}};
}

nlohmann::json run_json(const RunResult& run) {
  const RunMetrics& m = run.metrics;
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& [message, count] : error_counts(run.requests)) {
    errors.push_back({{"message", message}, {"count", count}});
  }
  nlohmann::json requests = nlohmann::json::array();
  for (const RequestRecord& r : run.requests) requests.push_back(request_json(r));
  return {{"setting", run.setting},
          {"duration_s", m.duration},
          {"completed", m.completed},
          {"failed", m.failed},
          {"total_input_tokens", m.input_tokens},
          {"total_output_tokens", m.output_tokens},
          {"request_throughput", m.request_throughput},
          {"input_throughput", m.input_throughput},
          {"output_throughput", m.output_throughput},
          {"total_token_throughput", m.total_token_throughput},
          {"peak_concurrency", m.peak_concurrency},
          {"ttft_ms", summary_json(m.ttft_ms)},
          {"tpot_ms", summary_json(m.tpot_ms)},
          {"itl_ms", summary_json(m.itl_ms)},
          {"e2e_ms", summary_json(m.e2e_ms)},
          {"errors", errors},
          {"requests", requests}};
}

std::string line(const std::string& name, const std::string& value) {
  return fmt::format("{:<40} {:>10}\n", name, value);
}

std::string heading(const std::string& text, char fill) {
  const size_t width = 51;
  const size_t side = text.size() + 2 < width ? (width - text.size()) / 2 : 0;
  std::string h = std::string(side, fill) + text;
  return h + std::string(width - std::min(width, h.size()), fill) + "\n";
}

std::string latency_block(const char* name, const Summary& s) {
  std::string out = heading(fmt::format("{} ({} samples)", name, s.count), '-');
  out += line(fmt::format("Mean {} (ms):", name), fmt::format("{:.2f}", s.mean));
  out += line(fmt::format("Median {} (ms):", name), fmt::format("{:.2f}", s.median));
  out += line(fmt::format("P90 {} (ms):", name), fmt::format("{:.2f}", s.p90));
  out += line(fmt::format("P99 {} (ms):", name), fmt::format("{:.2f}", s.p99));
  out += line(fmt::format("Max {} (ms):", name), fmt::format("{:.2f}", s.max));
  return out;
}

}  // namespace

std::vector<std::pair<std::string, int>> error_counts(const std::vector<RequestRecord>& requests) {
  std::map<std::string, int> counts;
  for (const RequestRecord& r : requests) {
    if (!r.ok) ++counts[r.error];
  }
  std::vector<std::pair<std::string, int>> out(counts.begin(), counts.end());
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.second > b.second; });
  return out;
}

nlohmann::json to_json(const BenchReport& report) {
  nlohmann::json runs = nlohmann::json::array();
  for (const RunResult& run : report.runs) runs.push_back(run_json(run));
  return {{"schema", kReportSchema},
          {"benchmark", report.benchmark},
          {"parameters", report.parameters},
          {"runs", runs}};
}

void write_json(const BenchReport& report, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out)
    fail("cannot write --result-json '{}': check the directory exists and is writable", path);
  out << to_json(report).dump(2) << "\n";
  if (!out) fail("error writing --result-json '{}'", path);
}

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "none";
  if (v.is_number_float() && std::isinf(v.get<double>())) return "inf";
  return v.dump();
}

std::string setting_label(const nlohmann::json& setting) {
  std::string label;
  for (const auto& [key, value] : setting.items()) {
    label += (label.empty() ? "" : ", ") + key + "=" + scalar_text(value);
  }
  return label;
}

std::string format_run(const RunResult& run, const std::string& title) {
  const RunMetrics& m = run.metrics;
  std::string out = heading(" " + title + " ", '=');
  if (!run.setting.empty()) out += line("Setting:", setting_label(run.setting));
  out += line("Successful requests:", std::to_string(m.completed));
  out += line("Failed requests:", std::to_string(m.failed));
  out += line("Benchmark duration (s):", fmt::format("{:.2f}", m.duration));
  out += line("Total input tokens:", std::to_string(m.input_tokens));
  out += line("Total generated tokens:", std::to_string(m.output_tokens));
  out += line("Request throughput (req/s):", fmt::format("{:.2f}", m.request_throughput));
  out += line("Input token throughput (tok/s):", fmt::format("{:.2f}", m.input_throughput));
  out += line("Output token throughput (tok/s):", fmt::format("{:.2f}", m.output_throughput));
  out += line("Total token throughput (tok/s):", fmt::format("{:.2f}", m.total_token_throughput));
  out += line("Peak concurrent requests:", std::to_string(m.peak_concurrency));
  out += latency_block("TTFT", m.ttft_ms);
  out += latency_block("TPOT", m.tpot_ms);
  out += latency_block("ITL", m.itl_ms);
  out += latency_block("E2E", m.e2e_ms);
  const auto errors = error_counts(run.requests);
  if (!errors.empty()) out += heading("Errors", '-');
  for (const auto& [message, count] : errors) out += fmt::format("{:>5} x {}\n", count, message);
  return out + std::string(51, '=') + "\n";
}

std::string format_runs_table(const BenchReport& report) {
  std::string out =
      "| setting | ok/failed | req/s | output tok/s | total tok/s | TTFT p50 / p99 (ms) | TPOT "
      "p50 / p99 (ms) | ITL p50 (ms) | E2E p50 / p99 (ms) |\n|---|---|---|---|---|---|---|---|---|"
      "\n";
  for (const RunResult& run : report.runs) {
    const RunMetrics& m = run.metrics;
    out += fmt::format(
        "| {} | {}/{} | {:.2f} | {:.1f} | {:.1f} | {:.0f} / {:.0f} | {:.1f} / {:.1f} | {:.1f} | "
        "{:.0f} / {:.0f} |\n",
        setting_label(run.setting), m.completed, m.failed, m.request_throughput,
        m.output_throughput, m.total_token_throughput, m.ttft_ms.median, m.ttft_ms.p99,
        m.tpot_ms.median, m.tpot_ms.p99, m.itl_ms.median, m.e2e_ms.median, m.e2e_ms.p99);
  }
  return out;
}

}  // namespace shardlm::serve_bench
