// One rank, assembled in one place for every way it runs (the offline LLM, a group's master, each
// worker): load the model -> make the backend the args ask for -> upload the weights -> size the
// KV cache. The caller then builds its runner over it: alone, the TransformerRunner this makes; in
// a group, the shard runners of parallel/ (which upload their own layers).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "engine/engine_args.h"
#include "engine/model_runner.h"
#include "kv/kv_cache.h"
#include "model/model.h"
#include "model/weight_set_of.h"

namespace shardlm {

class RankRuntime {
 public:
  enum class Placement {
    kAlone,    // the whole model in this process: weights uploaded here, KV sized from memory
    kInGroup,  // one rank of a TP x PP group: the shard runner uploads its part later
  };

  // Loads the model (unless `loaded` is given: tests pass one they changed) and makes its backend;
  // alone, also uploads the weights and sizes the cache. Throws Error naming what failed (the
  // model file, the device, the memory left for the cache).
  RankRuntime(const EngineArgs& args, Placement placement, std::unique_ptr<Model> loaded = nullptr);

  const Model& model() const { return *model_; }
  Backend& backend() { return *backend_; }
  Placement placement() const { return placement_; }
  // Alone: the weights as the backend prepared them (empty in a group: its stages prepare theirs).
  const BackendWeights& weights() const { return weights_; }
  // The KV cache: the blocks the args give (--num-kv-blocks, --kv-cache-memory); alone on a
  // device without either, what --gpu-memory-utilization leaves after the weights and the
  // activations; in a group, kv_blocks(args) of fp32 elements on every rank, so that they agree.
  const KvCacheShape& kv_shape() const { return kv_shape_; }
  // How the cache was sized, for the start-up log ("" when the args gave it).
  const std::string& kv_summary() const { return kv_summary_; }
  // The runner of a rank alone: a TransformerRunner over the whole model, sampling on the device
  // where the backend has one (SHARDLM_DEVICE_SAMPLING=0 keeps sampling on the host).
  std::unique_ptr<ModelRunner> make_runner(int64_t max_batch_tokens);

 private:
  void size_kv_cache(const EngineArgs& args);
  // The runner samples on the device (SHARDLM_DEVICE_SAMPLING=0 keeps it on the host).
  bool device_sampling() const;

  Placement placement_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Backend> backend_;
  BackendWeights weights_;  // alone: the whole model on the backend, prepared once
  KvCacheShape kv_shape_;
  std::string kv_summary_;
};

}  // namespace shardlm
