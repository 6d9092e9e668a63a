// ShardMasterRunner and run_shard_worker.
#include "dist/shard_runner.h"

namespace shardlm::dist {

ShardMasterRunner::ShardMasterRunner(const Model& full, Backend& backend,
                                     const KvCacheShape& full_shape, int64_t max_batch_tokens,
                                     const ParallelConfig& cfg, StageComms comms)
    : GroupMasterRunner(comms.world, full.config.vocab_size),
      comms_(comms),
      shard_(full, backend, full_shape, max_batch_tokens, cfg, comms) {}

double ShardMasterRunner::comm_seconds() const {
  return comms_.world.busy_seconds() + (comms_.tp ? comms_.tp->busy_seconds() : 0.0);
}

void run_shard_worker(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                      int64_t max_batch_tokens, const ParallelConfig& cfg, StageComms comms) {
  StageShard shard(full, backend, full_shape, max_batch_tokens, cfg, comms);
  worker_loop(comms.world, [&](const ForwardBatch& batch) { shard.step(batch, nullptr); });
}

}  // namespace shardlm::dist
