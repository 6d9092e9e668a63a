// bench serve's client against an in-process fake server: chunk timing, usage and re-tokenised
// counts, errors (HTTP 500, refused connection, dropped stream, aborted stream, timeout), the load
// driver's concurrency limit and arrival times, and a whole benchmark with its JSON report and
// plot.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "serve_bench/arrivals.h"
#include "serve_bench/load_driver.h"
#include "serve_bench/request_runner.h"
#include "serve_bench/serve_benchmark.h"
#include "test_serve_bench_fake_server.h"
#include "test_support.h"

namespace shardlm::serve_bench {
namespace {

using shardlm::testing::closed_port;
using shardlm::testing::FakeOpenAiServer;
using shardlm::testing::TempDir;
using Clock = std::chrono::steady_clock;

RequestOptions options_for(const std::string& url, const std::string& model,
                           const std::string& path = "/v1/completions", double timeout = 10) {
  RequestOptions o;
  o.endpoint = Endpoint::parse(url, "", timeout);
  o.path = path;
  o.model = model;
  return o;
}

SampleRequest sample(int prompt_len, int output_len) {
  SampleRequest s;
  for (int i = 0; i < prompt_len; ++i) s.prompt_ids.push_back(100 + i);
  s.prompt_len = prompt_len;
  s.output_len = output_len;
  return s;
}

RequestRecord send(const RequestOptions& o, const SampleRequest& s) {
  auto client = make_client(o.endpoint);
  return run_request(*client, s, o, Clock::now());
}

TEST(ServeBenchClient, TimesEveryTokenAndReadsUsage) {
  FakeOpenAiServer server(3);
  const RequestRecord r = send(options_for(server.base_url(), "fake"), sample(7, 6));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.usage_reported);
  EXPECT_EQ(r.prompt_tokens, 7);
  EXPECT_EQ(r.output_tokens, 6);
  EXPECT_EQ(r.itl.size(), 5u);  // tokens - 1 gaps
  EXPECT_GT(r.ttft, 0);
  EXPECT_LE(r.ttft, r.e2e);
  double sum = r.ttft, gaps = 0;
  for (double gap : r.itl) {
    EXPECT_GE(gap, 0);
    gaps += gap;
    sum += gap;
  }
  // The server sleeps 3 ms per token: 5 gaps span at least ~15 ms. (Under load two chunks can
  // arrive in one read, so a single gap may be ~0; their total cannot shrink.)
  EXPECT_GT(gaps, 0.010);
  EXPECT_LE(sum, r.e2e + 1e-9);
  EXPECT_EQ(r.generated_text, "t0 t1 t2 t3 t4 t5 ");
}

TEST(ServeBenchClient, ChatSkipsTheRoleChunk) {
  FakeOpenAiServer server;
  SampleRequest s;
  s.prompt = "hello there";
  s.output_len = 4;
  const RequestRecord r = send(options_for(server.base_url(), "fake", "/v1/chat/completions"), s);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output_tokens, 4);
  EXPECT_EQ(r.itl.size(), 3u);
  EXPECT_EQ(r.generated_text, "t0 t1 t2 t3 ");
}

TEST(ServeBenchClient, RequestBodyAsksForStreamingUsageAndIgnoreEos) {
  RequestOptions o = options_for("http://127.0.0.1:1", "m");
  o.extra_body = {{"top_k", 1}};
  const auto body = request_body(sample(3, 5), o);
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["max_tokens"], 5);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  EXPECT_EQ(body["ignore_eos"], true);
  EXPECT_EQ(body["prompt"], nlohmann::json({100, 101, 102}));
  EXPECT_EQ(body["top_k"], 1);
  o.path = "/v1/chat/completions";
  SampleRequest s = sample(3, 5);
  s.prompt = "hi";
  const auto chat = request_body(s, o);
  EXPECT_EQ(chat["messages"][0]["content"], "hi");
  EXPECT_FALSE(chat.contains("prompt"));
}

TEST(ServeBenchClient, ReportsServerErrorsRefusedConnectionsDroppedStreamsAndTimeouts) {
  FakeOpenAiServer server;
  const RequestRecord http = send(options_for(server.base_url(), "fail"), sample(2, 2));
  EXPECT_FALSE(http.ok);
  EXPECT_EQ(http.error, "HTTP 500: boom");

  const std::string closed = "http://127.0.0.1:" + std::to_string(closed_port());
  const RequestRecord refused = send(options_for(closed, "fake"), sample(2, 2));
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("could not connect"), std::string::npos) << refused.error;

  const RequestRecord cut = send(options_for(server.base_url(), "cut"), sample(2, 8));
  EXPECT_FALSE(cut.ok);
  EXPECT_FALSE(cut.error.empty());

  // A stream the server ends with finish_reason "abort" (a broken group) is a failed request,
  // though it ends with [DONE].
  const RequestRecord aborted = send(options_for(server.base_url(), "abort"), sample(2, 8));
  EXPECT_FALSE(aborted.ok);
  EXPECT_EQ(aborted.error, "the server ended the stream early (finish_reason \"abort\")");
  EXPECT_EQ(aborted.output_tokens, 2);

  const auto start = Clock::now();
  const RequestRecord slow =
      send(options_for(server.base_url(), "slow", "/v1/completions", 0.3), sample(2, 2));
  EXPECT_FALSE(slow.ok);
  EXPECT_NE(slow.error.find("timed out after 0.3 s"), std::string::npos) << slow.error;
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 0.9);
}

LoadResult drive(const RequestOptions& o, const LoadPlan& plan, int output_len) {
  auto make = [&]() -> RequestFn {
    auto client = std::shared_ptr<httplib::Client>(make_client(o.endpoint));
    return [&, client](size_t, Clock::time_point start) {
      return run_request(*client, sample(4, output_len), o, start);
    };
  };
  return drive_load(plan, make);
}

TEST(ServeBenchLoad, HonoursMaxConcurrency) {
  FakeOpenAiServer server(2);
  LoadPlan plan{std::vector<double>(12, 0.0), 3};
  size_t last_done = 0;
  std::mutex m;
  auto make = [&]() -> RequestFn {
    auto client =
        std::shared_ptr<httplib::Client>(make_client(Endpoint::parse(server.base_url(), "", 10)));
    return [&, client](size_t, Clock::time_point start) {
      return run_request(*client, sample(4, 5), options_for(server.base_url(), "fake"), start);
    };
  };
  const LoadResult r = drive_load(plan, make, [&](const LoadProgress& p) {
    std::lock_guard lock(m);
    EXPECT_EQ(p.done, last_done + 1);
    last_done = p.done;
  });
  EXPECT_EQ(last_done, 12u);
  EXPECT_EQ(server.completions(), 12);
  EXPECT_LE(server.max_in_flight(), 3);
  EXPECT_GE(server.max_in_flight(), 2);
  const RunMetrics metrics = compute_metrics(r.records, r.duration);
  EXPECT_EQ(metrics.completed, 12);
  EXPECT_LE(metrics.peak_concurrency, 3);
  for (size_t i = 0; i < r.records.size(); ++i) EXPECT_EQ(r.records[i].index, int(i));
}

TEST(ServeBenchLoad, StartsRequestsAtTheirArrivalTimes) {
  FakeOpenAiServer server(1);
  LoadPlan plan;
  plan.arrivals = arrival_offsets(15, {40.0, 1.0, 7});
  const LoadResult r = drive(options_for(server.base_url(), "fake"), plan, 2);
  // Each starts at its arrival, never before; a sleeping worker on a loaded 2-core machine can
  // wake up to ~0.1 s late (CI saw two such), so most, not all, must start within 50 ms.
  size_t on_time = 0;
  for (size_t i = 0; i < r.records.size(); ++i) {
    ASSERT_TRUE(r.records[i].ok) << r.records[i].error;
    EXPECT_EQ(r.records[i].scheduled, plan.arrivals[i]);
    EXPECT_GE(r.records[i].start, plan.arrivals[i] - 1e-3);
    EXPECT_LT(r.records[i].start, plan.arrivals[i] + 0.5) << "request " << i;
    if (r.records[i].start < plan.arrivals[i] + 0.05) ++on_time;
  }
  EXPECT_GE(on_time, r.records.size() * 4 / 5) << "requests started within 50 ms of arrival";
  EXPECT_GE(r.duration, plan.arrivals.back());
}

TEST(ServeBenchLoad, AServerThatStopsMidRunFailsTheRestQuickly) {
  auto server = std::make_unique<FakeOpenAiServer>(1);
  const RequestOptions o = options_for(server->base_url(), "fake");
  LoadPlan plan;
  for (int i = 0; i < 10; ++i) plan.arrivals.push_back(0.03 * i);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server->stop();
  });
  const auto start = Clock::now();
  const LoadResult r = drive(o, plan, 2);
  stopper.join();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 3.0);
  const RunMetrics m = compute_metrics(r.records, r.duration);
  EXPECT_GE(m.completed, 1);
  EXPECT_GE(m.failed, 1);
  EXPECT_EQ(m.completed + m.failed, 10);
}

ServeBenchOptions bench_options(const std::string& url, const TempDir& dir) {
  ServeBenchOptions o;
  o.base_url = url;
  o.dataset.num_prompts = 6;
  o.dataset.input_len = 8;
  o.dataset.output_len = 4;
  o.max_concurrency = 2;
  o.warmup = 1;
  o.progress = false;
  o.result_json = dir.path("result.json");
  o.plot = dir.path("plot.svg");
  return o;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ServeBenchRun, WritesAReportWithEveryFigure) {
  FakeOpenAiServer server;
  TempDir dir("serve_bench");
  const BenchReport report = run_serve_benchmark(bench_options(server.base_url(), dir));
  EXPECT_EQ(server.completions(), 7);  // one warm-up request
  const auto j = nlohmann::json::parse(slurp(dir.path("result.json")));
  EXPECT_EQ(j["schema"], kReportSchema);
  EXPECT_EQ(j["parameters"]["model"], "fake");
  EXPECT_EQ(j["parameters"]["input_len"], 8);
  ASSERT_EQ(j["runs"].size(), 1u);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["completed"], 6);
  EXPECT_EQ(run["failed"], 0);
  EXPECT_EQ(run["total_input_tokens"], 48);
  EXPECT_EQ(run["total_output_tokens"], 24);
  EXPECT_EQ(run["setting"]["max_concurrency"], 2);
  EXPECT_GT(run["output_throughput"].get<double>(), 0);
  EXPECT_LE(run["ttft_ms"]["max"].get<double>(), run["e2e_ms"]["max"].get<double>());
  EXPECT_EQ(run["itl_ms"]["count"], 18);
  for (const auto& r : run["requests"]) {
    EXPECT_EQ(r["prompt_tokens"], 8);
    EXPECT_EQ(r["output_tokens"], r["expected_output_tokens"]);
    EXPECT_LE(r["ttft_ms"].get<double>(), r["e2e_ms"].get<double>());
  }
  const std::string svg = slurp(dir.path("plot.svg"));
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(ServeBenchRun, SweepsConcurrencyAndCountsTokensWithoutUsage) {
  FakeOpenAiServer server;
  TempDir dir("serve_bench");
  ServeBenchOptions o = bench_options(server.base_url(), dir);
  o.model = "no-usage";
  o.warmup = 0;
  o.sweep_concurrency = {1, 3};
  o.endpoint = "/v1/chat/completions";
  const BenchReport report = run_serve_benchmark(o);
  ASSERT_EQ(report.runs.size(), 2u);
  EXPECT_EQ(report.runs[0].setting["max_concurrency"], 1);
  EXPECT_EQ(report.runs[1].setting["max_concurrency"], 3);
  EXPECT_EQ(report.runs[0].metrics.peak_concurrency, 1);
  for (const RunResult& run : report.runs) {
    EXPECT_EQ(run.metrics.completed, 6);
    for (const RequestRecord& r : run.requests) {
      EXPECT_FALSE(r.usage_reported);
      EXPECT_EQ(r.output_tokens, 4);  // re-tokenised by the server's /tokenize
    }
  }
  const std::string svg = slurp(dir.path("plot.svg"));
  EXPECT_NE(svg.find("c=3"), std::string::npos);
}

TEST(ServeBenchRun, FailsClearlyWhenEveryRequestFailsButKeepsTheReport) {
  FakeOpenAiServer server;
  TempDir dir("serve_bench");
  ServeBenchOptions o = bench_options(server.base_url(), dir);
  o.model = "fail";
  o.warmup = 0;
  try {
    run_serve_benchmark(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("all 6 requests failed"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("HTTP 500: boom"), std::string::npos);
  }
  const auto j = nlohmann::json::parse(slurp(dir.path("result.json")));
  EXPECT_EQ(j["runs"][0]["failed"], 6);
  EXPECT_EQ(j["runs"][0]["errors"][0]["message"], "HTTP 500: boom");
  EXPECT_EQ(j["runs"][0]["errors"][0]["count"], 6);
}

TEST(ServeBenchRun, AStoppedServerEndsWithAClearError) {
  TempDir dir("serve_bench");
  const std::string url = "http://127.0.0.1:" + std::to_string(closed_port());
  EXPECT_THROW(
      {
        try {
          run_serve_benchmark(bench_options(url, dir));
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("cannot reach the server"), std::string::npos);
          throw;
        }
      },
      Error);
}

TEST(ServeBenchRun, CliExitsOneWithAMessageForAStoppedServer) {
  const std::string cmd = std::string(SHARDLM_BINARY) + " bench serve --num-prompts 2 --base-url " +
                          "http://127.0.0.1:" + std::to_string(closed_port()) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  EXPECT_NE(out.find("error: cannot reach the server"), std::string::npos) << out;
}

}  // namespace
}  // namespace shardlm::serve_bench
