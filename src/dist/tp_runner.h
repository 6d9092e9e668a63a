// Tensor-parallel model runners. Every rank runs its shard (tp_shard.h) of the same forward (the
// ranks exchange activations with all-gathers inside it); the
// master's runner broadcasts each step's batch to the others first and gathers the vocab-parallel
// logits afterwards, and broadcasts a heartbeat while idle so a dead master or worker is noticed
// within the steady-state timeout. Workers loop on run_tp_worker until the master says shutdown.
#pragma once

#include <memory>

#include "dist/master_runner.h"

namespace shardlm::dist {

// One rank's shard, cache and forward.
class TpShard {
 public:
  TpShard(const Model& full, Backend& backend, const KvCacheShape& full_shape,
          int64_t max_batch_tokens, Communicator& comm);
  // Runs the batch; returns logit_rows.size() rows of vocab/tp floats (this rank's vocab slice).
  const float* forward(const ForwardBatch& batch);
  int64_t local_vocab() const { return local_vocab_; }

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Transformer> transformer_;
  int64_t local_vocab_;
  std::vector<float> logits_;
  std::vector<float> scratch_;  // all-gather receive buffer
};

class TpMasterRunner : public GroupMasterRunner {
 public:
  TpMasterRunner(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                 int64_t max_batch_tokens, Communicator& comm);
  ~TpMasterRunner() override { stop_heartbeat(); }

 protected:
  void run_local(const ForwardBatch& batch, float* logits) override;

 private:
  TpShard shard_;
  std::vector<float> gathered_;
};

// A worker rank: receives steps until shutdown (returns) or a failure (throws Error).
void run_tp_worker(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                   int64_t max_batch_tokens, Communicator& comm);

}  // namespace shardlm::dist
