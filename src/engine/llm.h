// Offline batch generation in C++: `shardlm::LLM llm(EngineArgs{...}); llm.generate(prompts,
// params)` loads the model, sizes the KV cache, runs every prompt through the engine's continuous
// batching and returns texts, token ids and finish reasons in prompt order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/engine_args.h"
#include "engine/model_runner.h"
#include "engine/rank_runtime.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace shardlm {

struct GenerateOutput {
  std::string text;  // the output decoded without special tokens
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> token_ids;  // the output, including a final EOS or stop token
  RequestFinishReason finish_reason = RequestFinishReason::kStop;
  RequestTimes times;
  int n_preemptions = 0;
  // generate_stream: the end of the text that no token event carried (held back for stop strings
  // or an incomplete UTF-8 character until the request ended).
  std::string stream_tail;
};

class LLM {
 public:
  // `loaded`: a model already in memory to serve instead of loading args.model.
  explicit LLM(const EngineArgs& args, std::unique_ptr<Model> loaded = nullptr);
  ~LLM();

  // Prompts are encoded with the tokenizer's special tokens (BOS) as the model expects.
  std::vector<GenerateOutput> generate(const std::vector<std::string>& prompts,
                                       const SamplingParams& params);
  std::vector<GenerateOutput> generate(const std::vector<std::vector<int32_t>>& prompts,
                                       const SamplingParams& params);
  // One prompt, its tokens handed to on_token as they are sampled (with the text each made
  // ready); on_token returns false to stop early (finish reason "stop").
  GenerateOutput generate_stream(const std::vector<int32_t>& prompt, const SamplingParams& params,
                                 const std::function<bool(const TokenEvent&)>& on_token);
  // The logits (vocab floats per position) of every position of the prompt, computed through the
  // engine's runner in chunks of max_num_batched_tokens. Only between generate calls (no request
  // may be in flight); it uses the cache's first blocks, so the prefix cache is emptied after.
  std::vector<float> prompt_logits(const std::vector<int32_t>& prompt);

  Engine& engine() { return *engine_; }
  ModelRunner& runner() { return *runner_; }
  const Model& model() const { return rank_->model(); }
  // The rank's runtime: its backend (the KV element type) and the KV cache's shape.
  RankRuntime& rank() { return *rank_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  EngineConfig engine_config(const EngineArgs& args) const;
  GenerateOutput output_of(FinishedRequest& f) const;
  void show_progress(size_t done, size_t total) const;

  bool progress_;
  std::unique_ptr<RankRuntime> rank_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace shardlm
