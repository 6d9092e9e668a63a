// `shardlm bench offline --batch-sizes ...`: the engine without HTTP. For each thread count and
// batch size (the engine's max_num_seqs), N random prompts of input-len tokens generate output-len
// tokens each (greedy, ignore_eos) through the offline LLM API; the report has the same shape as
// `bench serve`'s, from the engine's own per-request times (no inter-token gaps).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "serve_bench/report.h"

namespace shardlm::serve_bench {

struct OfflineBenchOptions {
  std::string model;  // a resolved path (a preset or config.json for dummy)
  std::string load_format = "auto";
  std::vector<int> threads = {0};  // 0 = all cores
  std::vector<int> batch_sizes = {1};
  int num_prompts = 16;
  int input_len = 128;
  int output_len = 64;
  int max_num_batched_tokens = 0;  // 0 = the device's default (engine/engine_args.h step_tokens)
  uint64_t seed = 0;
  std::string device;          // "cpu", "cuda", "" = auto
  size_t kv_cache_memory = 0;  // bytes; 0 = the engine default
  double gpu_memory_utilization = 0.9;
  bool enforce_eager = false;
  std::string quantization;  // "" or "fp8" (--quantization)
  std::string kv_cache_dtype = "auto";  // --kv-cache-dtype
};

// Prints one result block per run on stdout and returns the report.
BenchReport run_offline_benchmark(const OfflineBenchOptions& options);

}  // namespace shardlm::serve_bench
