// The model runners of a serving group: the master's (broadcasts each step, then runs its own
// StageShard and returns the assembled logits) and the worker loop (runs its StageShard for every
// step the master broadcasts until shutdown). One design for TP, PP and TP x PP.
#pragma once

#include <deque>

#include "parallel/master_runner.h"
#include "parallel/stage_shard.h"

namespace shardlm::parallel {

class ShardMasterRunner : public GroupMasterRunner {
 public:
  ShardMasterRunner(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                    int64_t max_batch_tokens, const ParallelConfig& cfg, StageComms comms);
  ~ShardMasterRunner() override { stop_heartbeat(); }
  // Time in the world and TP communicators.
  double comm_seconds() const override;
  RankStats stats() const { return shard_.stats(); }
  // ParallelConfig::steps_in_flight for pp > 1 (pp when 0); 1 without a pipeline.
  int max_in_flight() const override { return in_flight_; }

 protected:
  void run_local(const ForwardBatch& batch, float* logits) override { shard_.step(batch, logits); }
  void run_submit(const ForwardBatch& batch) override;
  void run_collect(float* logits) override;

 private:
  StageComms comms_;
  StageShard shard_;
  int in_flight_;
  std::deque<size_t> pending_rows_;  // logit rows of each submitted, uncollected step
};

// A worker rank: returns when the master shuts the group down; throws Error on a failure.
// `publish` (if set) receives this rank's stats about once a second, from another thread.
void run_shard_worker(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                      int64_t max_batch_tokens, const ParallelConfig& cfg, StageComms comms,
                      const std::function<void(const RankStats&)>& publish = {});

}  // namespace shardlm::parallel
