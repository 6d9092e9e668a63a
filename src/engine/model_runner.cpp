// TransformerRunner: the single-backend model runner.
#include "engine/model_runner.h"

#include "core/error.h"
#include "kv/kv_block_io.h"

namespace shardlm {

void ModelRunner::execute_sampled(const ForwardBatch&, const RowSampling*, int32_t*,
                                  const std::function<void()>&) {
  fail("internal: this model runner cannot sample on the device");
}

void ModelRunner::submit(const ForwardBatch&) {
  fail("internal: this model runner runs one step at a time (no submit)");
}

void ModelRunner::collect(float*) {
  fail("internal: this model runner runs one step at a time (no collect)");
}

namespace {

[[noreturn]] void no_block_view() {
  fail("this worker's KV cache is spread over the ranks of a group; the KV transfer of "
       "disaggregated serving needs a single-process worker (no --tensor-parallel-size or "
       "--pipeline-parallel-size)");
}

}  // namespace

const KvCacheShape& ModelRunner::kv_block_shape() const { no_block_view(); }
void ModelRunner::read_kv_block(int32_t, char*) { no_block_view(); }
void ModelRunner::write_kv_block(int32_t, const char*) { no_block_view(); }

void TransformerRunner::read_kv_block(int32_t block, char* out) {
  shardlm::read_kv_block(*kv_, backend_, block, out);
}

void TransformerRunner::write_kv_block(int32_t block, const char* in) {
  shardlm::write_kv_block(*kv_, backend_, block, in);
}

TransformerRunner::TransformerRunner(const Model& model, Backend& backend,
                                     const KvCacheShape& kv_shape, int64_t max_batch_tokens,
                                     bool device_sampling, const BackendWeights* prepared)
    : backend_(backend),
      vocab_(model.config.vocab_size),
      device_sampling_(device_sampling && !backend.host_memory()),
      kv_(std::make_unique<KvCache>(kv_shape, backend)),
      transformer_(std::make_unique<Transformer>(model, backend, *kv_, max_batch_tokens, 0, -1,
                                                 prepared)) {}

void TransformerRunner::execute(const ForwardBatch& batch, float* logits) {
  transformer_->forward(batch, logits);
}

void TransformerRunner::execute_sampled(const ForwardBatch& batch, const RowSampling* params,
                                        int32_t* tokens,
                                        const std::function<void()>& complete_rows) {
  transformer_->forward_sampled(batch, params, tokens, complete_rows);
}

}  // namespace shardlm
