// Generator implementation.
#include "engine/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "engine/sampler.h"

namespace shardlm {

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Generator::Generator(const Model& model, const Tokenizer& tokenizer, Backend& backend,
                     const GeneratorOptions& o)
    : model_(model),
      tokenizer_(tokenizer),
      max_context_(o.max_context > 0 ? o.max_context : std::min(model.config.context_length, 4096)),
      max_batch_(o.max_batch_tokens),
      block_size_(o.block_size) {
  KvCacheShape shape{model.config.n_layers, model.config.kv_dim(), block_size_,
                     (max_context_ + block_size_ - 1) / block_size_};
  kv_ = std::make_unique<KvCache>(shape, backend);
  blocks_ = std::make_unique<BlockAllocator>(shape.n_blocks);
  transformer_ = std::make_unique<Transformer>(model, backend, *kv_, max_batch_);
  logits_.resize(static_cast<size_t>(model.config.vocab_size));  // last-token logits only
}

void Generator::reset() {
  for (int32_t b : block_table_) blocks_->release(b);
  block_table_.clear();
}

void Generator::ensure_blocks(int32_t n_tokens) {
  while (static_cast<int64_t>(block_table_.size()) * block_size_ < n_tokens) {
    auto b = blocks_->allocate();
    if (!b) fail("internal: KV cache exhausted at {} tokens", n_tokens);
    block_table_.push_back(*b);
  }
}

void Generator::run(const std::vector<int32_t>& tokens, int32_t n_past, bool all_logits,
                    float* logits) {
  ensure_blocks(n_past + static_cast<int32_t>(tokens.size()));
  ForwardBatch batch;
  batch.add_sequence(tokens, n_past, block_table_, block_size_, all_logits);
  transformer_->forward(batch, logits);
}

FinishReason Generator::generate(const std::vector<int32_t>& prompt, const SamplingParams& params,
                                 const std::function<bool(int32_t)>& on_token,
                                 GenerationStats& stats) {
  const int vocab = model_.config.vocab_size;
  if (prompt.empty()) fail("the prompt is empty: give at least one token of input");
  if (static_cast<int>(prompt.size()) >= max_context_) {
    fail("the prompt has {} tokens but the context holds {}; shorten it or raise --ctx-size",
         prompt.size(), max_context_);
  }
  reset();
  stats = {};
  stats.prompt_tokens = static_cast<int>(prompt.size());
  Sampler sampler(params, sampling_seed(params));
  const double t0 = now_seconds();
  for (size_t i = 0; i < prompt.size(); i += static_cast<size_t>(max_batch_)) {
    const size_t end = std::min(prompt.size(), i + static_cast<size_t>(max_batch_));
    run({prompt.begin() + static_cast<std::ptrdiff_t>(i),
         prompt.begin() + static_cast<std::ptrdiff_t>(end)},
        static_cast<int32_t>(i), false, logits_.data());
  }
  const double t1 = now_seconds();
  stats.prefill_seconds = t1 - t0;
  std::vector<int32_t> output;
  FinishReason reason = FinishReason::kLength;
  while (static_cast<int>(output.size()) < params.max_tokens) {
    const int32_t id = sampler.sample(logits_.data(), vocab, prompt, output);
    output.push_back(id);
    const bool stop_token = std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(),
                                      id) != params.stop_token_ids.end();
    if ((!params.ignore_eos && tokenizer_.is_eos(id)) || stop_token) {
      reason = FinishReason::kStop;
      break;
    }
    if (!on_token(id)) {
      reason = FinishReason::kStop;
      break;
    }
    const int32_t pos = static_cast<int32_t>(prompt.size() + output.size()) - 1;
    if (pos + 1 >= max_context_) break;
    run({id}, pos, false, logits_.data());
  }
  stats.generated_tokens = static_cast<int>(output.size());
  stats.decode_seconds = now_seconds() - t1;
  return reason;
}

std::vector<float> Generator::prompt_logits(const std::vector<int32_t>& prompt) {
  const size_t vocab = static_cast<size_t>(model_.config.vocab_size);
  if (prompt.empty() || static_cast<int>(prompt.size()) > max_context_) {
    fail("prompt of {} tokens does not fit a context of {}", prompt.size(), max_context_);
  }
  reset();
  std::vector<float> all(prompt.size() * vocab);
  for (size_t i = 0; i < prompt.size(); i += static_cast<size_t>(max_batch_)) {
    const size_t end = std::min(prompt.size(), i + static_cast<size_t>(max_batch_));
    run({prompt.begin() + static_cast<std::ptrdiff_t>(i),
         prompt.begin() + static_cast<std::ptrdiff_t>(end)},
        static_cast<int32_t>(i), true, all.data() + i * vocab);
  }
  return all;
}

}  // namespace shardlm
