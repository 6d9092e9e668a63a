// ShardMasterRunner and run_shard_worker.
#include "parallel/shard_runner.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

#include "core/error.h"

namespace shardlm::parallel {

ShardMasterRunner::ShardMasterRunner(const Model& full, Backend& backend,
                                     const KvCacheShape& full_shape, int64_t max_batch_tokens,
                                     const ParallelConfig& cfg, StageComms comms)
    : GroupMasterRunner(comms.world, full.config.vocab_size),
      comms_(comms),
      shard_(full, backend, full_shape, max_batch_tokens, cfg, comms),
      in_flight_(cfg.pp > 1 ? (cfg.steps_in_flight > 0 ? cfg.steps_in_flight : cfg.pp) : 1) {
  if (cfg.pp > 1) {
    spdlog::info("pipeline of {} stages: {} step{} in flight{}", cfg.pp, in_flight_,
                 in_flight_ > 1 ? "s" : "",
                 in_flight_ > 1 ? " (batches of different requests)" : " (--pp-steps-in-flight 1)");
  }
}

void ShardMasterRunner::run_submit(const ForwardBatch& batch) {
  shard_.forward(batch);
  pending_rows_.push_back(batch.logit_rows.size());
}

void ShardMasterRunner::run_collect(float* logits) {
  if (pending_rows_.empty()) fail("internal: no step in flight to collect");
  const size_t rows = pending_rows_.front();
  pending_rows_.pop_front();
  shard_.collect_logits(rows, logits);
}

double ShardMasterRunner::comm_seconds() const {
  return shard_.comm_busy();
}

namespace {

// Publishes a worker's stats about once a second on its own thread, until destroyed.
class StatsReporter {
 public:
  StatsReporter(const StageShard& shard, const std::function<void(const RankStats&)>& publish) {
    if (!publish) return;
    thread_ = std::thread([this, &shard, publish] {
      while (!done_) {
        for (int i = 0; i < 10 && !done_; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        try {
          publish(shard.stats());
        } catch (const std::exception&) {
          // The store did not answer: skip this report (a master that is gone is noticed by the
          // step loop, which ends the worker).
        }
      }
    });
  }
  ~StatsReporter() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

void run_shard_worker(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                      int64_t max_batch_tokens, const ParallelConfig& cfg, StageComms comms,
                      const std::function<void(const RankStats&)>& publish) {
  StageShard shard(full, backend, full_shape, max_batch_tokens, cfg, comms);
  const StatsReporter reporter(shard, publish);
  worker_loop(comms.world, [&](const ForwardBatch& batch) { shard.step(batch, nullptr); });
}

}  // namespace shardlm::parallel
