// What a rank is built from (EngineArgs: the model, the device, the batch and cache sizes), and the
// sizes every rank of a group derives from them the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "backend/make_backend.h"
#include "kv/kv_cache.h"
#include "model/model.h"

namespace shardlm {

class ModelRunner;

struct EngineArgs {
  std::string model;  // GGUF file or Hugging Face directory; a preset or config.json for dummy
  std::string load_format = "auto";  // "auto" or "dummy" (model/dummy_model.h)
  int threads = 0;                   // 0 = all hardware threads
  int block_size = 16;
  int64_t num_kv_blocks = 0;  // 0 = sized from kv_cache_memory
  // Bytes of keys and values; 0 = 512 MiB, except for one process on a GPU, whose cache takes
  // gpu_memory_utilization of the card (its own share) less the weights and activations
  // (engine/kv_sizing.h).
  size_t kv_cache_memory = 0;
  double gpu_memory_utilization = 0.9;
  bool enforce_eager = false;  // every step op by op: no CUDA graphs
  std::string quantization;    // "" or "fp8": linear layers quantised at load (BackendSpec)
  std::string kv_cache_dtype = "auto";  // auto | bf16 | fp8 | fp8_e4m3 (BackendSpec)
  // Sequences and tokens per engine step; 0 = by device (step_seqs, step_tokens below).
  int max_num_seqs = 0;
  int max_num_batched_tokens = 0;
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

// The step limits the args give: what they name, else by the device they resolve to: on a GPU 256
// sequences and 8,192 tokens (vLLM's API-server defaults on large GPUs; chunked prefill then runs
// prompts in chunks big enough for the tensor cores), on the CPU 64 and 512.
int step_seqs(const EngineArgs& args);
int step_tokens(const EngineArgs& args);
// The context length and number of KV blocks the args give for a model (every rank of a group
// computes the same).
int model_len(const EngineArgs& args, const ModelConfig& c);
// elem_bytes: the backend's KV element; groups keep fp32's so that every rank, whatever its
// device, computes the same count.
int64_t kv_blocks(const EngineArgs& args, const ModelConfig& c, size_t elem_bytes = sizeof(float));
// The backend the args ask for (device, threads, batch and context sizes; see EngineArgs::device);
// throws Error when the device cannot be used.
BackendSpec backend_spec(const EngineArgs& args, const ModelConfig& c);

}  // namespace shardlm
