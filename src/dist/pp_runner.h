// Pipeline parallelism: stage s of pp owns a contiguous range of layers and the KV cache of those
// layers only. Every rank receives the step's batch; stage 0 (the master) embeds the tokens and
// runs its layers, each stage passes the hidden states to the next by point-to-point send, and the
// last stage computes the logits and sends them to the master. (One micro-batch per step: the
// stages do not overlap yet.) The mapped weights of other stages' layers are never touched, so each
// rank's resident weights are about 1/pp.
#pragma once

#include <memory>
#include <utility>

#include "dist/master_runner.h"

namespace shardlm::dist {

class PpStage {
 public:
  PpStage(const Model& model, Backend& backend, const KvCacheShape& full_shape,
          int64_t max_batch_tokens, int stage, int pp);
  // Runs this stage's part of the step, receiving from / sending to its neighbours; the master
  // (stage 0) returns the logits received from the last stage in `logits`.
  void step(const ForwardBatch& batch, Communicator& comm, float* logits);

 private:
  const Model& model_;
  int stage_, pp_, first_, last_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Transformer> transformer_;
  std::vector<float> logits_;
};

class PpMasterRunner : public GroupMasterRunner {
 public:
  PpMasterRunner(const Model& model, Backend& backend, const KvCacheShape& full_shape,
                 int64_t max_batch_tokens, Communicator& comm);
  ~PpMasterRunner() override { stop_heartbeat(); }

 protected:
  void run_local(const ForwardBatch& batch, float* logits) override {
    stage_.step(batch, comm_, logits);
  }

 private:
  PpStage stage_;
};

void run_pp_worker(const Model& model, Backend& backend, const KvCacheShape& full_shape,
                   int64_t max_batch_tokens, Communicator& comm);

}  // namespace shardlm::dist
