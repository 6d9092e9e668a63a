// bench serve's pure parts: percentiles and run metrics, Poisson/gamma arrivals, SSE framing, URL
// parsing, the JSON report's schema and the SVG plot.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/error.h"
#include "serve_bench/arrivals.h"
#include "serve_bench/http_endpoint.h"
#include "serve_bench/report.h"
#include "serve_bench/report_plot.h"
#include "serve_bench/sse_parser.h"
#include "serve_bench/stats.h"
#include "serve_bench/svg_plot.h"

namespace shardlm::serve_bench {
namespace {

TEST(ServeBenchStats, PercentilesInterpolateLikeNumpy) {
  const std::vector<double> v = {5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 3);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 4.6);  // numpy.percentile([1..5], 90)
  EXPECT_DOUBLE_EQ(percentile(v, 99), 4.96);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 5);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  const Summary s = summarize({10, 20, 30, 40});
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.mean, 25);
  EXPECT_DOUBLE_EQ(s.median, 25);
  EXPECT_DOUBLE_EQ(s.p90, 37);
  EXPECT_DOUBLE_EQ(s.max, 40);
  EXPECT_EQ(summarize({}).count, 0u);
}

RequestRecord record(double start, double ttft, double e2e, int out, bool ok = true) {
  RequestRecord r;
  r.ok = ok;
  r.error = ok ? "" : "HTTP 500: boom";
  r.start = start;
  r.ttft = ttft;
  r.e2e = e2e;
  r.prompt_tokens = 10;
  r.output_tokens = out;
  for (int i = 1; i < out; ++i) r.itl.push_back((e2e - ttft) / (out - 1));
  return r;
}

TEST(ServeBenchStats, RunMetricsFromRequests) {
  const std::vector<RequestRecord> rs = {record(0, 0.1, 1.0, 10), record(0.5, 0.2, 1.1, 10),
                                         record(2.0, 0.1, 0.1, 1), record(2.0, 0, 0.01, 0, false)};
  const RunMetrics m = compute_metrics(rs, 4.0);
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.input_tokens, 30);
  EXPECT_EQ(m.output_tokens, 21);
  EXPECT_DOUBLE_EQ(m.request_throughput, 0.75);
  EXPECT_DOUBLE_EQ(m.output_throughput, 21 / 4.0);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 51 / 4.0);
  EXPECT_EQ(m.tpot_ms.count, 2u);  // the 1-token request has no TPOT
  EXPECT_NEAR(m.tpot_ms.mean, 100, 1e-9);
  EXPECT_EQ(m.itl_ms.count, 18u);
  EXPECT_NEAR(m.ttft_ms.max, 200, 1e-9);
  EXPECT_NEAR(m.e2e_ms.median, 1000, 1e-9);
  EXPECT_EQ(m.peak_concurrency, 2);
  EXPECT_NEAR(compute_metrics(rs, 0).duration, 2.1, 1e-12);  // first start to last end
}

TEST(ServeBenchStats, PeakConcurrencyTreatsTouchingIntervalsAsSequential) {
  EXPECT_EQ(peak_concurrency({record(0, 0, 1, 1), record(1, 0, 1, 1), record(2, 0, 1, 1)}), 1);
  EXPECT_EQ(peak_concurrency({record(0, 0, 3, 1), record(1, 0, 1, 1), record(1.5, 0, 1, 1)}), 3);
}

std::vector<double> gaps(const std::vector<double>& offsets) {
  std::vector<double> g;
  for (size_t i = 1; i < offsets.size(); ++i) g.push_back(offsets[i] - offsets[i - 1]);
  return g;
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

double coefficient_of_variation(const std::vector<double>& v) {
  const double m = mean(v);
  double var = 0;
  for (double x : v) var += (x - m) * (x - m);
  return std::sqrt(var / double(v.size())) / m;
}

TEST(ServeBenchArrivals, PoissonAndGammaGapsHaveTheRequestedMean) {
  for (double burstiness : {1.0, 0.5, 4.0}) {
    const auto offsets = arrival_offsets(20001, {10.0, burstiness, 42});
    EXPECT_EQ(offsets[0], 0);
    EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end()));
    const auto g = gaps(offsets);
    EXPECT_NEAR(mean(g), 0.1, 0.004) << "burstiness " << burstiness;
    // gamma(k) gaps: coefficient of variation 1/sqrt(k) (1 for Poisson)
    EXPECT_NEAR(coefficient_of_variation(g), 1 / std::sqrt(burstiness), 0.05);
  }
}

TEST(ServeBenchArrivals, SeededInfiniteAndInvalidRates) {
  EXPECT_EQ(arrival_offsets(50, {5.0, 1.0, 3}), arrival_offsets(50, {5.0, 1.0, 3}));
  EXPECT_NE(arrival_offsets(50, {5.0, 1.0, 3}), arrival_offsets(50, {5.0, 1.0, 4}));
  EXPECT_EQ(arrival_offsets(5, {INFINITY, 1.0, 3}), std::vector<double>(5, 0.0));
  EXPECT_THROW(arrival_offsets(5, {0.0, 1.0, 3}), Error);
  EXPECT_THROW(arrival_offsets(5, {1.0, -1.0, 3}), Error);
}

TEST(ServeBenchSse, SplitsDataLinesAcrossArbitraryPieces) {
  const std::string stream =
      ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata:{\"b\":2}\n\ndata: [DONE]\n\n";
  for (size_t piece : {1, 3, 7, 1000}) {
    SseParser parser;
    std::vector<std::string> got;
    for (size_t i = 0; i < stream.size(); i += piece) {
      parser.feed(std::string_view(stream).substr(i, piece), [&](std::string_view p) {
        got.emplace_back(p);
        return true;
      });
    }
    EXPECT_EQ(got, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "[DONE]"})) << piece;
    EXPECT_TRUE(parser.pending().empty());
  }
  SseParser parser;
  int calls = 0;
  EXPECT_FALSE(parser.feed("data: 1\ndata: 2\n", [&](std::string_view) { return ++calls < 1; }));
  EXPECT_EQ(calls, 1);
}

TEST(ServeBenchEndpoint, ParsesBaseUrls) {
  const Endpoint e = Endpoint::parse("http://127.0.0.1:8000", "k", 5);
  EXPECT_EQ(e.origin, "http://127.0.0.1:8000");
  EXPECT_EQ(e.prefix, "");
  EXPECT_EQ(e.url("/v1/models"), "http://127.0.0.1:8000/v1/models");
  EXPECT_EQ(Endpoint::parse("https://host/api/", "", 5).prefix, "/api");
  EXPECT_THROW(Endpoint::parse("127.0.0.1:8000", "", 5), Error);
  EXPECT_THROW(Endpoint::parse("http://h:1", "", 0), Error);
  EXPECT_EQ(error_message(R"({"error": {"message": "bad model"}})"), "bad model");
  EXPECT_EQ(error_message("plain"), "plain");
}

BenchReport sample_report(int runs) {
  BenchReport report{"serve", {{"model", "m"}, {"request_rate", "inf"}}, {}};
  for (int k = 0; k < runs; ++k) {
    RunResult run;
    run.setting = {{"max_concurrency", 1 << (2 * k)}, {"request_rate", "inf"}};
    run.requests = {record(0, 0.1, 1.0, 10), record(0.1, 0.2, 1.2, 10),
                    record(0.2, 0, 0.01, 0, false)};
    run.metrics = compute_metrics(run.requests, 1.5 + k);
    report.runs.push_back(run);
  }
  return report;
}

TEST(ServeBenchReport, JsonSchemaIsStable) {
  const auto j = to_json(sample_report(1));
  EXPECT_EQ(j["schema"], "shardlm.bench.v1");
  EXPECT_EQ(j["benchmark"], "serve");
  const auto& run = j["runs"][0];
  for (const char* key :
       {"setting", "duration_s", "completed", "failed", "total_input_tokens", "total_output_tokens",
        "request_throughput", "input_throughput", "output_throughput", "total_token_throughput",
        "peak_concurrency", "ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "errors", "requests"}) {
    EXPECT_TRUE(run.contains(key)) << key;
  }
  EXPECT_EQ(run.size(), 17u) << "a new key: bump kReportSchema when one changes meaning";
  for (const char* latency : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"}) {
    for (const char* stat : {"count", "mean", "median", "p90", "p99", "max"}) {
      EXPECT_TRUE(run[latency].contains(stat)) << latency << "." << stat;
    }
  }
  EXPECT_EQ(run["errors"][0]["message"], "HTTP 500: boom");
  EXPECT_EQ(run["errors"][0]["count"], 1);
  for (const char* key : {"index", "ok", "error", "scheduled_s", "start_s", "ttft_ms", "e2e_ms",
                          "prompt_tokens", "output_tokens", "expected_output_tokens", "itl_ms"}) {
    EXPECT_TRUE(run["requests"][0].contains(key)) << key;
  }
  EXPECT_EQ(run["requests"][0].size(), 11u);
  EXPECT_EQ(run["requests"][0]["itl_ms"].size(), 9u);
}

TEST(ServeBenchReport, TablesNameEveryFigure) {
  const BenchReport report = sample_report(2);
  const std::string block = format_run(report.runs[0], "Serving Benchmark Result");
  for (const char* text : {"Successful requests:", "Failed requests:", "Request throughput",
                           "Output token throughput", "Median TTFT (ms):", "P99 TPOT (ms):",
                           "Max ITL (ms):", "Mean E2E (ms):", "HTTP 500: boom"}) {
    EXPECT_NE(block.find(text), std::string::npos) << text;
  }
  const std::string table = format_runs_table(report);
  EXPECT_NE(table.find("| max_concurrency=4, request_rate=inf | 2/1 |"), std::string::npos)
      << table;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(ServeBenchPlot, SvgIsWellFormed) {
  for (int runs : {1, 3}) {
    const std::string svg = render_svg(report_figure(sample_report(runs)));
    EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
    EXPECT_EQ(count(svg, "<svg"), 1u);
    EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
    EXPECT_EQ(count(svg, "<text"), count(svg, "</text>"));
    EXPECT_EQ(svg.find("nan"), std::string::npos);
    EXPECT_EQ(svg.find("inf\""), std::string::npos);
  }
  EXPECT_NE(render_svg(report_figure(sample_report(3))).find("c=16"), std::string::npos);
  EXPECT_EQ(xml_escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
  EXPECT_EQ(nice_ticks(0.0), (std::vector<double>{0, 1}));
  EXPECT_EQ(nice_ticks(9.0), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(1000.0).back(), 1000.0);
}

}  // namespace
}  // namespace shardlm::serve_bench
