// PpStage: one pipeline stage's forward and its sends and receives.
#include "dist/pp_runner.h"

#include <spdlog/spdlog.h>

#include "dist/parallel_config.h"

namespace shardlm::dist {

PpStage::PpStage(const Model& model, Backend& backend, const KvCacheShape& full_shape,
                 int64_t max_batch_tokens, int stage, int pp)
    : model_(model), stage_(stage), pp_(pp) {
  std::tie(first_, last_) = stage_layer_range(stage, pp, model.config.n_layers);
  KvCacheShape shape = full_shape;
  shape.n_layers = last_ - first_;
  kv_ = std::make_unique<KvCache>(shape, backend);
  transformer_ = std::make_unique<Transformer>(model, backend, *kv_, max_batch_tokens);
  transformer_->set_first_cached_layer(first_);
  if (stage == pp - 1) {
    logits_.resize(static_cast<size_t>(max_batch_tokens) * model.config.vocab_size);
  }
  spdlog::info("pipeline stage {} of {}: layers {}-{}", stage, pp, first_, last_ - 1);
}

void PpStage::step(const ForwardBatch& batch, Communicator& comm, float* logits) {
  Transformer& t = *transformer_;
  const auto hidden = static_cast<size_t>(batch.size()) * model_.config.d_model;
  const auto n_logits = batch.logit_rows.size() * static_cast<size_t>(model_.config.vocab_size);
  t.begin(batch);
  if (stage_ == 0) {
    t.embed(batch);
  } else {
    comm.recv(t.hidden(), hidden, stage_ - 1);
  }
  t.run_layers(batch, first_, last_);
  if (stage_ < pp_ - 1) {
    comm.send(t.hidden(), hidden, stage_ + 1);
    if (stage_ == 0) comm.recv(logits, n_logits, pp_ - 1);
    return;
  }
  float* out = stage_ == 0 ? logits : logits_.data();
  t.compute_logits(batch, out);
  if (stage_ != 0) comm.send(out, n_logits, 0);
}

PpMasterRunner::PpMasterRunner(const Model& model, Backend& backend, const KvCacheShape& full_shape,
                               int64_t max_batch_tokens, Communicator& comm)
    : GroupMasterRunner(comm, model.config.vocab_size),
      stage_(model, backend, full_shape, max_batch_tokens, 0, comm.size()) {}

void run_pp_worker(const Model& model, Backend& backend, const KvCacheShape& full_shape,
                   int64_t max_batch_tokens, Communicator& comm) {
  PpStage stage(model, backend, full_shape, max_batch_tokens, comm.rank(), comm.size());
  worker_loop(comm, [&](const ForwardBatch& batch) { stage.step(batch, comm, nullptr); });
}

}  // namespace shardlm::dist
