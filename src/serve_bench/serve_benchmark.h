// `shardlm bench serve`: benchmarks a running OpenAI-compatible server. Checks the server answers,
// builds the dataset, sends optional warm-up requests, then runs the load once (or once per
// --sweep-concurrency level, each with fresh prompts so that no level reuses another's cached
// prefixes) and reports: tables on stdout, --result-json, --plot.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "serve_bench/dataset.h"
#include "serve_bench/http_endpoint.h"
#include "serve_bench/report.h"

namespace shardlm::serve_bench {

struct ServeBenchOptions {
  std::string base_url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions";
  std::string model;  // "" = the first model GET /v1/models lists
  std::string api_key;
  std::string tokenizer;  // a local model path; "" = the server's /tokenize
  DatasetOptions dataset;
  double request_rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  int max_concurrency = 0;  // 0 = no limit
  std::vector<int> sweep_concurrency;
  int warmup = 0;  // requests sent (and not measured) before the run
  uint64_t seed = 0;
  double timeout = 600;  // seconds per request
  double temperature = 0;
  bool ignore_eos = true;
  std::string extra_body;  // a JSON object merged into every request
  std::string result_json;
  std::string plot;
  bool progress = true;  // progress bar on stderr when it is a terminal
};

// Throws Error when the server cannot be reached or rejects the set-up, and — after printing and
// writing the report — when every request failed.
BenchReport run_serve_benchmark(const ServeBenchOptions& options);

// The model to benchmark: `model` when given, else the first id of GET /v1/models. Throws Error
// saying how to start or point at a server when it cannot be reached.
std::string probe_server(const Endpoint& endpoint, const std::string& model);

}  // namespace shardlm::serve_bench
