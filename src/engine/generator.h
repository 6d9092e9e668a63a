// Single-sequence generation on one backend: prefill the prompt in chunks, then decode token by
// token until EOS, a stop token or max_tokens. Used by `generate` and the benchmarks; the serving
// engine (continuous batching) drives the same Transformer with many sequences.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "engine/sampling_params.h"
#include "kv/block_allocator.h"
#include "kv/kv_cache.h"
#include "model/model.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

namespace shardlm {

enum class FinishReason { kStop, kLength };

struct GenerationStats {
  int prompt_tokens = 0;
  int generated_tokens = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

struct GeneratorOptions {
  int max_context = 0;         // 0 = the model's context length (capped at 4096)
  int max_batch_tokens = 512;  // prefill chunk size
  int block_size = 16;
};

class Generator {
 public:
  Generator(const Model& model, const Tokenizer& tokenizer, Backend& backend,
            const GeneratorOptions& options);

  // Generates after `prompt`; on_token returns false to stop early.
  FinishReason generate(const std::vector<int32_t>& prompt, const SamplingParams& params,
                        const std::function<bool(int32_t)>& on_token, GenerationStats& stats);
  // Logits (vocab floats per position) for every position of the prompt.
  std::vector<float> prompt_logits(const std::vector<int32_t>& prompt);
  int max_context() const { return max_context_; }

 private:
  void reset();
  void ensure_blocks(int32_t n_tokens);
  // Runs tokens at position n_past; fills logits_ for the last token (or all when all_logits).
  void run(const std::vector<int32_t>& tokens, int32_t n_past, bool all_logits, float* logits);

  const Model& model_;
  const Tokenizer& tokenizer_;
  int max_context_;
  int max_batch_;
  int block_size_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<BlockAllocator> blocks_;
  std::unique_ptr<Transformer> transformer_;
  std::vector<int32_t> block_table_;
  std::vector<float> logits_;
};

}  // namespace shardlm
