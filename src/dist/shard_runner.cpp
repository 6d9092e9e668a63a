// ShardMasterRunner and run_shard_worker.
#include "dist/shard_runner.h"

#include <atomic>
#include <thread>

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
                      int64_t max_batch_tokens, const ParallelConfig& cfg, StageComms comms,
                      const std::function<void(const RankStats&)>& publish) {
  StageShard shard(full, backend, full_shape, max_batch_tokens, cfg, comms);
  std::atomic<bool> done{false};
  std::thread reporter([&] {
    while (publish && !done) {
      for (int i = 0; i < 10 && !done; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      try {
        publish(shard.stats());
      } catch (const std::exception&) {
        return;  // the master is gone; the step loop reports that
      }
    }
  });
  try {
    worker_loop(comms.world, [&](const ForwardBatch& batch) { shard.step(batch, nullptr); });
  } catch (...) {
    done = true;
    reporter.join();
    throw;
  }
  done = true;
  reporter.join();
}

}  // namespace shardlm::dist
