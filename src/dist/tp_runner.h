// Tensor-parallel model runners. Every rank runs its shard (tp_shard.h) of the same forward (the
// ranks exchange activations with all-gathers inside it); the
// master's runner broadcasts each step's batch to the others first and gathers the vocab-parallel
// logits afterwards, and broadcasts a heartbeat while idle so a dead master or worker is noticed
// within the steady-state timeout. Workers loop on run_tp_worker until the master says shutdown.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include "dist/communicator.h"
#include "engine/model_runner.h"

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

class TpMasterRunner : public ModelRunner {
 public:
  TpMasterRunner(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                 int64_t max_batch_tokens, Communicator& comm,
                 std::chrono::milliseconds heartbeat = std::chrono::seconds(1));
  ~TpMasterRunner() override;  // tells the workers to shut down

  int32_t vocab_size() const override { return vocab_; }
  void execute(const ForwardBatch& batch, float* logits) override;

 private:
  void heartbeat_loop(std::chrono::milliseconds period);

  Communicator& comm_;
  TpShard shard_;
  int32_t vocab_;
  std::vector<float> gathered_;
  std::mutex mu_;  // one collective sequence at a time
  std::chrono::steady_clock::time_point last_send_;
  std::atomic<bool> stop_{false};
  std::thread heartbeat_;
};

// A worker rank: receives steps until shutdown (returns) or a failure (throws Error).
void run_tp_worker(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                   int64_t max_batch_tokens, Communicator& comm);

}  // namespace shardlm::dist
