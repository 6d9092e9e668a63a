// Percentiles, summaries and run metrics.
#include "serve_bench/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace shardlm::serve_bench {

namespace {

double sorted_percentile(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

std::vector<double> scaled(std::vector<double> v, double factor) {
  for (double& x : v) x *= factor;
  return v;
}

double per_second(double amount, double seconds) {
  return seconds > 0 ? amount / seconds : 0;
}

double span(const std::vector<RequestRecord>& requests) {
  double first = 0, last = 0;
  bool any = false;
  for (const RequestRecord& r : requests) {
    first = any ? std::min(first, r.start) : r.start;
    last = any ? std::max(last, r.start + r.e2e) : r.start + r.e2e;
    any = true;
  }
  return last - first;
}

}  // namespace

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return sorted_percentile(values, p);
}

Summary summarize(const std::vector<double>& values) {
  Summary s;
  if (values.empty()) return s;
  std::vector<double> v = values;
  std::sort(v.begin(), v.end());
  s.count = v.size();
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  s.median = sorted_percentile(v, 50);
  s.p90 = sorted_percentile(v, 90);
  s.p99 = sorted_percentile(v, 99);
  s.max = v.back();
  return s;
}

int peak_concurrency(const std::vector<RequestRecord>& requests) {
  std::vector<std::pair<double, int>> events;  // (time, +1 start / -1 end); ends sort first
  for (const RequestRecord& r : requests) {
    events.emplace_back(r.start, 1);
    events.emplace_back(r.start + r.e2e, -1);
  }
  std::sort(events.begin(), events.end());
  int now = 0, peak = 0;
  for (const auto& [time, delta] : events) peak = std::max(peak, now += delta);
  return peak;
}

RunMetrics compute_metrics(const std::vector<RequestRecord>& requests, double duration) {
  RunMetrics m;
  m.duration = duration > 0 ? duration : span(requests);
  std::vector<double> ttft, tpot, itl, e2e;
  for (const RequestRecord& r : requests) {
    if (!r.ok) {
      ++m.failed;
      continue;
    }
    ++m.completed;
    m.input_tokens += r.prompt_tokens;
    m.output_tokens += r.output_tokens;
    ttft.push_back(r.ttft);
    e2e.push_back(r.e2e);
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
    if (r.output_tokens > 1) tpot.push_back((r.e2e - r.ttft) / double(r.output_tokens - 1));
  }
  m.request_throughput = per_second(m.completed, m.duration);
  m.input_throughput = per_second(double(m.input_tokens), m.duration);
  m.output_throughput = per_second(double(m.output_tokens), m.duration);
  m.total_token_throughput = per_second(double(m.input_tokens + m.output_tokens), m.duration);
  m.ttft_ms = summarize(scaled(ttft, 1e3));
  m.tpot_ms = summarize(scaled(tpot, 1e3));
  m.itl_ms = summarize(scaled(itl, 1e3));
  m.e2e_ms = summarize(scaled(e2e, 1e3));
  m.peak_concurrency = peak_concurrency(requests);
  return m;
}

}  // namespace shardlm::serve_bench
