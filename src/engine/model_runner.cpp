// TransformerRunner: the single-backend model runner.
#include "engine/model_runner.h"

#include "core/error.h"

namespace shardlm {

void ModelRunner::execute_sampled(const ForwardBatch&, const RowSampling*, int32_t*) {
  fail("internal: this model runner cannot sample on the device");
}

TransformerRunner::TransformerRunner(const Model& model, Backend& backend,
                                     const KvCacheShape& kv_shape, int64_t max_batch_tokens,
                                     bool device_sampling)
    : vocab_(model.config.vocab_size),
      device_sampling_(device_sampling && !backend.host_memory()),
      kv_(std::make_unique<KvCache>(kv_shape, backend)),
      transformer_(std::make_unique<Transformer>(model, backend, *kv_, max_batch_tokens)) {}

void TransformerRunner::execute(const ForwardBatch& batch, float* logits) {
  transformer_->forward(batch, logits);
}

void TransformerRunner::execute_sampled(const ForwardBatch& batch, const RowSampling* params,
                                        int32_t* tokens) {
  transformer_->forward_sampled(batch, params, tokens);
}

}  // namespace shardlm
