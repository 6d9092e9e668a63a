// Building the report's charts.
#include "serve_bench/report_plot.h"

#include <fmt/format.h>

#include <fstream>

#include "core/error.h"

namespace shardlm::serve_bench {

namespace {

BarPanel percentile_panel(const std::string& name, const Summary& s) {
  return {name + " latency",
          "ms",
          {{"mean", s.mean}, {"p50", s.median}, {"p90", s.p90}, {"p99", s.p99}, {"max", s.max}}};
}

// The swept quantity of a run ("max_concurrency" or "batch_size"), or "" when there is none.
std::string sweep_key(const nlohmann::json& setting) {
  for (const char* key : {"max_concurrency", "batch_size"}) {
    if (setting.contains(key) && setting[key].is_number()) return key;
  }
  return "";
}

// "c=4" for a concurrency level, "b=8" for a batch size.
std::string point_label(const nlohmann::json& setting) {
  const std::string key = sweep_key(setting);
  if (key.empty()) return setting_label(setting);
  return (key == "batch_size" ? "b=" : "c=") + scalar_text(setting[key]);
}

XyPanel latency_vs_throughput(const BenchReport& r, const std::string& name,
                              Summary RunMetrics::*field) {
  XyPanel p{"Output throughput vs " + name, name + " (ms)", "output tokens/s", {}};
  XySeries median{name + " p50", {}}, p99{name + " p99", {}};
  for (const RunResult& run : r.runs) {
    const Summary& s = run.metrics.*field;
    const double y = run.metrics.output_throughput;
    median.points.push_back({s.median, y, point_label(run.setting)});
    p99.points.push_back({s.p99, y, ""});
  }
  p.series = {median, p99};
  return p;
}

std::string figure_notes(const RunResult& run) {
  const RunMetrics& m = run.metrics;
  return fmt::format(
      "{} ok, {} failed in {:.1f} s: {:.2f} req/s, {:.1f} output tok/s, {:.1f} total "
      "tok/s",
      m.completed, m.failed, m.duration, m.request_throughput, m.output_throughput,
      m.total_token_throughput);
}

std::string parameters_note(const nlohmann::json& parameters) {
  std::string note;
  for (const char* key :
       {"model", "dataset", "input_len", "output_len", "num_prompts", "request_rate", "endpoint"}) {
    if (!parameters.contains(key)) continue;
    note += (note.empty() ? "" : ", ") + std::string(key) + "=" + scalar_text(parameters[key]);
  }
  return note;
}

}  // namespace

Figure report_figure(const BenchReport& r) {
  Figure fig;
  fig.title = "shardlm bench " + r.benchmark;
  fig.notes.push_back(parameters_note(r.parameters));
  if (r.runs.size() == 1) {
    const RunMetrics& m = r.runs.front().metrics;
    fig.notes.push_back(figure_notes(r.runs.front()));
    fig.panels = {percentile_panel("TTFT", m.ttft_ms), percentile_panel("TPOT", m.tpot_ms),
                  percentile_panel("ITL", m.itl_ms), percentile_panel("E2E", m.e2e_ms)};
    return fig;
  }
  fig.panels = {latency_vs_throughput(r, "TPOT", &RunMetrics::tpot_ms),
                latency_vs_throughput(r, "TTFT", &RunMetrics::ttft_ms),
                latency_vs_throughput(r, "E2E", &RunMetrics::e2e_ms)};
  const std::string key = sweep_key(r.runs.front().setting);
  XyPanel by{"Output throughput by " + (key.empty() ? "run" : key),
             key.empty() ? "run" : key,
             "output tokens/s",
             {}};
  XySeries s{"output tokens/s", {}};
  for (size_t i = 0; i < r.runs.size(); ++i) {
    const nlohmann::json& setting = r.runs[i].setting;
    const double x =
        key.empty() || !setting.contains(key) ? double(i + 1) : setting[key].get<double>();
    s.points.push_back({x, r.runs[i].metrics.output_throughput, point_label(setting)});
  }
  by.series = {s};
  fig.panels.push_back(by);
  return fig;
}

void write_plot(const BenchReport& report, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("cannot write --plot '{}': check the directory exists and is writable", path);
  out << render_svg(report_figure(report));
  if (!out) fail("error writing --plot '{}'", path);
}

}  // namespace shardlm::serve_bench
