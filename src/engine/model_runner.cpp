// TransformerRunner: the single-backend model runner.
#include "engine/model_runner.h"

namespace shardlm {

TransformerRunner::TransformerRunner(const Model& model, Backend& backend,
                                     const KvCacheShape& kv_shape, int64_t max_batch_tokens)
    : vocab_(model.config.vocab_size),
      kv_(std::make_unique<KvCache>(kv_shape, backend)),
      transformer_(std::make_unique<Transformer>(model, backend, *kv_, max_batch_tokens)) {}

void TransformerRunner::execute(const ForwardBatch& batch, float* logits) {
  transformer_->forward(batch, logits);
}

}  // namespace shardlm
