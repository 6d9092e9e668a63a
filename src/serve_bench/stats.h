// Latency summaries (mean, median, p90, p99, max) and the figures of one benchmark run, computed
// from what each of its requests did.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm::serve_bench {

// The p-th percentile (p in [0, 100]) with linear interpolation between the closest ranks, as
// numpy.percentile computes it by default; 0 for no values.
double percentile(std::vector<double> values, double p);

struct Summary {
  size_t count = 0;
  double mean = 0;
  double median = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

// All zero when values is empty.
Summary summarize(const std::vector<double>& values);

// What one request did. Times are in seconds; start is measured from the start of the run.
struct RequestRecord {
  int index = 0;  // position in the dataset
  bool ok = false;
  std::string error;     // why it failed, when !ok
  double scheduled = 0;  // when the arrival process released it (start waits for a free slot)
  double start = 0;
  double ttft = 0;          // send -> first token
  double e2e = 0;           // send -> last byte of the response
  std::vector<double> itl;  // gaps between consecutive token chunks
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  int64_t expected_output_tokens = 0;  // max_tokens asked for
  bool usage_reported = false;         // token counts came from the server's usage
  std::string generated_text;          // kept to count tokens when the server reports no usage
};

struct RunMetrics {
  double duration = 0;  // start of the run -> last completion, seconds
  int completed = 0;
  int failed = 0;
  int64_t input_tokens = 0;       // of completed requests
  int64_t output_tokens = 0;      // of completed requests
  double request_throughput = 0;  // completed requests per second
  double input_throughput = 0;    // tokens per second
  double output_throughput = 0;
  double total_token_throughput = 0;
  Summary ttft_ms;
  Summary tpot_ms;  // (e2e - ttft) / (output tokens - 1), requests with 2+ output tokens
  Summary itl_ms;
  Summary e2e_ms;
  int peak_concurrency = 0;  // most requests in flight at once
};

// duration <= 0 takes the span from the first start to the last completion.
RunMetrics compute_metrics(const std::vector<RequestRecord>& requests, double duration);

// The largest number of requests whose [start, start + e2e] intervals overlap.
int peak_concurrency(const std::vector<RequestRecord>& requests);

}  // namespace shardlm::serve_bench
