// TpShard, TpMasterRunner and the worker loop.
#include "dist/tp_runner.h"

#include <spdlog/spdlog.h>

#include "dist/tp_shard.h"

namespace shardlm::dist {

TpShard::TpShard(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                 int64_t max_batch_tokens, Communicator& comm)
    : model_(shard_model(full, comm.rank(), comm.size())),
      local_vocab_(full.config.vocab_size / comm.size()) {
  KvCacheShape shape = full_shape;
  shape.kv_dim = model_->config.kv_dim();
  kv_ = std::make_unique<KvCache>(shape, backend);
  transformer_ = std::make_unique<Transformer>(*model_, backend, *kv_, max_batch_tokens);
  transformer_->set_tensor_parallel(
      comm.size(), [this, &comm](const float* local, int64_t rows, int64_t cols, float* full) {
        const auto n = static_cast<size_t>(rows * cols);
        scratch_.resize(n * static_cast<size_t>(comm.size()));
        comm.all_gather(local, n, scratch_.data());
        // [rank][row][cols] -> [row][rank * cols + j]
        for (int r = 0; r < comm.size(); ++r) {
          for (int64_t i = 0; i < rows; ++i) {
            const float* src = scratch_.data() + (r * rows + i) * cols;
            std::copy(src, src + cols, full + i * cols * comm.size() + r * cols);
          }
        }
      });
  logits_.resize(static_cast<size_t>(max_batch_tokens * local_vocab_));
  // The embedding table is read row by row on lookup, so only looked-up rows become resident.
  const double mib = 1 << 20, embd = static_cast<double>(full.weights.tok_embd.nbytes());
  spdlog::info(
      "rank {} of {}: weights {:.1f} MiB of the model's {:.1f} MiB (embedding table, "
      "{:.1f} MiB, paged in per looked-up row)",
      comm.rank(), comm.size(), (static_cast<double>(model_->weight_bytes()) - embd) / mib,
      (static_cast<double>(full.weight_bytes()) - embd) / mib, embd / mib);
}

const float* TpShard::forward(const ForwardBatch& batch) {
  transformer_->forward(batch, logits_.data());
  return logits_.data();
}

TpMasterRunner::TpMasterRunner(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                               int64_t max_batch_tokens, Communicator& comm)
    : GroupMasterRunner(comm, full.config.vocab_size),
      shard_(full, backend, full_shape, max_batch_tokens, comm) {
  gathered_.resize(static_cast<size_t>(max_batch_tokens * full.config.vocab_size));
}

void TpMasterRunner::run_local(const ForwardBatch& batch, float* logits) {
  const float* local = shard_.forward(batch);
  const auto n_out = static_cast<int64_t>(batch.logit_rows.size());
  const int64_t vl = shard_.local_vocab(), vocab = vocab_size();
  comm_.gather(local, static_cast<size_t>(n_out * vl), gathered_.data(), 0);
  // gathered: [rank][row][vl] -> logits: [row][rank * vl + j]
  for (int r = 0; r < comm_.size(); ++r) {
    for (int64_t i = 0; i < n_out; ++i) {
      const float* src = gathered_.data() + (r * n_out + i) * vl;
      std::copy(src, src + vl, logits + i * vocab + r * vl);
    }
  }
}

void run_tp_worker(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                   int64_t max_batch_tokens, Communicator& comm) {
  TpShard shard(full, backend, full_shape, max_batch_tokens, comm);
  worker_loop(comm, [&](const ForwardBatch& batch) {
    const float* local = shard.forward(batch);
    comm.gather(local, batch.logit_rows.size() * static_cast<size_t>(shard.local_vocab()), nullptr,
                0);
  });
}

}  // namespace shardlm::dist
