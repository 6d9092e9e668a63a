// What every model-running subcommand shares: the model flags (--model, --device, --threads,
// sizes), the model and tokenizer they name, and the EngineArgs for an LLM over them.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "engine/engine_args.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace shardlm::app {

struct SessionOptions {
  std::string model;                    // path or "" for the default model
  std::string load_format = "auto";     // or "dummy"
  int threads = 0;                      // 0 = all cores
  int ctx_size = 0;                     // 0 = model context (capped at 4096)
  int batch_size = 512;                 // prefill chunk
  std::string device;                   // "cpu", "cuda", "" = auto (backend/make_backend.h)
  double gpu_memory_utilization = 0.9;  // batches through the engine (EngineArgs)
  bool enforce_eager = false;           // no CUDA graphs
  std::string quantization;             // "" or "fp8" (--quantization)
  std::string kv_cache_dtype = "auto";  // --kv-cache-dtype
};

std::unique_ptr<Model> open_model(const std::string& flag, const std::string& load_format = "auto");
std::unique_ptr<Tokenizer> open_tokenizer(const Model& model);
// The engine for the options. One sequence at a time (`generate` with one prompt, `bench` at
// batch 1) gets a cache of just its context: n_seqs 1 sizes the cache for one --ctx-size sequence
// instead of the memory a batch would take.
EngineArgs engine_args(const SessionOptions& options, int n_seqs);
// Adds --model, --threads, --ctx-size, --batch-size, --device, --gpu-memory-utilization,
// --enforce-eager and --load-format to a subcommand.
void add_session_flags(CLI::App& cmd, SessionOptions& options);

}  // namespace shardlm::app
