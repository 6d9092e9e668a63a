// Offline batch generation in C++: `shardlm::LLM llm(EngineArgs{...}); llm.generate(prompts,
// params)` loads the model, sizes the KV cache, runs every prompt through the engine's continuous
// batching and returns texts, token ids and finish reasons in prompt order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/make_backend.h"
#include "engine/engine.h"
#include "engine/model_runner.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace shardlm {

struct EngineArgs {
  std::string model;  // GGUF file or Hugging Face directory; a preset or config.json for dummy
  std::string load_format = "auto";  // "auto" or "dummy" (model/dummy_model.h)
  int threads = 0;                   // 0 = all hardware threads
  int block_size = 16;
  int64_t num_kv_blocks = 0;  // 0 = sized from kv_cache_memory
  // Bytes of keys and values; 0 = 512 MiB, except for one process on a GPU, whose cache takes
  // gpu_memory_utilization of the card less the weights and activations (engine/kv_sizing.h).
  size_t kv_cache_memory = 0;
  double gpu_memory_utilization = 0.9;
  bool enforce_eager = false;  // every step op by op: no CUDA graphs
  int max_num_seqs = 64;
  int max_num_batched_tokens = 512;
  int max_model_len = 0;  // 0 = the model's context length, capped at 4096
  bool enable_prefix_caching = true;
  bool show_progress = true;  // a progress line on stderr when it is a terminal
  // "cpu", "cuda" or "" = auto: cuda when the build has CUDA and a GPU is visible (groups too:
  // their ranks exchange activations through NCCL or staged through host memory).
  std::string device;
  // Builds the model runner (default: a TransformerRunner over the whole model). A tensor-parallel
  // master passes one that joins its group and runs its shard.
  std::function<std::unique_ptr<ModelRunner>(
      const Model& model, Backend& backend, const KvCacheShape& kv_shape, int64_t max_batch_tokens)>
      make_runner;
};

struct GenerateOutput {
  std::string text;  // the output decoded without special tokens
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> token_ids;  // the output, including a final EOS or stop token
  RequestFinishReason finish_reason = RequestFinishReason::kStop;
  RequestTimes times;
  int n_preemptions = 0;
};

// The context length and number of KV blocks the args give for a model (every rank of a group
// computes the same).
int model_len(const EngineArgs& args, const ModelConfig& c);
// elem_bytes: the backend's KV element; groups keep fp32's so that every rank, whatever its
// device, computes the same count.
int64_t kv_blocks(const EngineArgs& args, const ModelConfig& c, size_t elem_bytes = sizeof(float));
// The backend the args ask for (device, threads, batch and context sizes; see EngineArgs::device);
// throws Error when the device cannot be used.
BackendSpec backend_spec(const EngineArgs& args, const ModelConfig& c);

class LLM {
 public:
  explicit LLM(const EngineArgs& args);
  ~LLM();

  // Prompts are encoded with the tokenizer's special tokens (BOS) as the model expects.
  std::vector<GenerateOutput> generate(const std::vector<std::string>& prompts,
                                       const SamplingParams& params);
  std::vector<GenerateOutput> generate(const std::vector<std::vector<int32_t>>& prompts,
                                       const SamplingParams& params);

  Engine& engine() { return *engine_; }
  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  EngineConfig engine_config(const EngineArgs& args) const;
  void show_progress(size_t done, size_t total) const;

  bool progress_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace shardlm
