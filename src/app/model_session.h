// What every model-running subcommand needs: the model, its tokenizer, a backend (CPU or CUDA) and
// a single-sequence generator, built from command-line options.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "engine/generator.h"
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
};

struct ModelSession {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Generator> generator;
};

std::unique_ptr<Model> open_model(const std::string& flag, const std::string& load_format = "auto");
std::unique_ptr<Tokenizer> open_tokenizer(const Model& model);
ModelSession open_session(const SessionOptions& options);
// Adds --model, --threads, --ctx-size, --batch-size, --device, --gpu-memory-utilization,
// --enforce-eager and --load-format to a subcommand.
void add_session_flags(CLI::App& cmd, SessionOptions& options);

}  // namespace shardlm::app
