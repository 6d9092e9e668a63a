// LLM: the engine over one RankRuntime, and the offline generate loops.
#include "engine/llm.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "model/forward_batch.h"

namespace shardlm {

LLM::LLM(const EngineArgs& args, std::unique_ptr<Model> loaded)
    : progress_(args.show_progress && isatty(STDERR_FILENO)) {
  using Placement = RankRuntime::Placement;
  rank_ = std::make_unique<RankRuntime>(
      args, args.make_runner ? Placement::kInGroup : Placement::kAlone, std::move(loaded));
  tokenizer_ = Tokenizer::create(model().tokenizer);
  const KvCacheShape& shape = rank_->kv_shape();
  EngineConfig config = engine_config(args);
  config.validate();
  runner_ = args.make_runner ? args.make_runner(model(), rank_->backend(), shape, step_tokens(args))
                             : rank_->make_runner(step_tokens(args));
  engine_ = std::make_unique<Engine>(config, *runner_, tokenizer_.get());
  spdlog::info(
      "KV cache: {} blocks of {} tokens = {} tokens ({:.0f} MiB, {} at {} byte(s) per element); "
      "max_model_len {}; steps of up to {} sequences and {} tokens",
      shape.n_blocks, shape.block_size, shape.n_blocks * shape.block_size,
      static_cast<double>(shape.bytes()) / (1 << 20), dtype_name(rank_->backend().kv_dtype()),
      shape.elem_bytes, config.scheduler.max_model_len, config.scheduler.max_num_seqs,
      config.scheduler.max_num_batched_tokens);
  if (!rank_->kv_summary().empty()) spdlog::info("KV cache sized by {}", rank_->kv_summary());
}

LLM::~LLM() = default;

EngineConfig LLM::engine_config(const EngineArgs& args) const {
  const ModelConfig& c = model().config;
  EngineConfig e;
  e.scheduler.max_num_seqs = step_seqs(args);
  e.scheduler.max_num_batched_tokens = step_tokens(args);
  e.scheduler.max_model_len = model_len(args, c);
  e.blocks.n_blocks = rank_->kv_shape().n_blocks;
  e.blocks.block_size = args.block_size;
  e.blocks.prefix_caching = args.enable_prefix_caching;
  const TokenizerSpec& t = model().tokenizer;
  if (t.eos_id) e.eos_token_ids.push_back(*t.eos_id);
  e.eos_token_ids.insert(e.eos_token_ids.end(), t.extra_eos_ids.begin(), t.extra_eos_ids.end());
  return e;
}

std::vector<GenerateOutput> LLM::generate(const std::vector<std::string>& prompts,
                                          const SamplingParams& params) {
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(prompts.size());
  for (const std::string& p : prompts) ids.push_back(tokenizer_->encode(p, true, true));
  return generate(ids, params);
}

std::vector<GenerateOutput> LLM::generate(const std::vector<std::vector<int32_t>>& prompts,
                                          const SamplingParams& params) {
  // Validated once, all before any is queued (an invalid prompt queues none).
  for (const auto& p : prompts) validate_request(engine_->limits(), p, params);
  std::unordered_map<int64_t, size_t> index;  // request id -> prompt position
  const int64_t first = engine_->new_request_ids(static_cast<int64_t>(prompts.size()));
  for (size_t i = 0; i < prompts.size(); ++i) {
    engine_->add_validated_request(first + static_cast<int64_t>(i), prompts[i], params);
    index[first + static_cast<int64_t>(i)] = i;
  }
  std::vector<GenerateOutput> outputs(prompts.size());
  size_t done = 0;
  while (engine_->has_unfinished()) {
    for (FinishedRequest& f : engine_->step().finished) {
      outputs[index.at(f.id)] = output_of(f);
      show_progress(++done, prompts.size());
    }
  }
  return outputs;
}

GenerateOutput LLM::output_of(FinishedRequest& f) const {
  GenerateOutput o;
  o.text = tokenizer_->decode(f.output, true);
  o.prompt_token_ids = std::move(f.prompt);
  o.token_ids = std::move(f.output);
  o.finish_reason = f.reason;
  o.times = f.times;
  o.n_preemptions = f.n_preemptions;
  o.stream_tail = std::move(f.final_text);
  return o;
}

GenerateOutput LLM::generate_stream(const std::vector<int32_t>& prompt,
                                    const SamplingParams& params,
                                    const std::function<bool(const TokenEvent&)>& on_token) {
  validate_request(engine_->limits(), prompt, params);
  const int64_t id = engine_->new_request_ids();
  engine_->add_validated_request(id, prompt, params);
  bool stopped = false;
  GenerateOutput out;
  while (engine_->has_unfinished()) {
    StepOutput step = engine_->step();
    for (const TokenEvent& t : step.tokens) {
      if (t.request_id == id && !stopped && !on_token(t)) stopped = engine_->abort_request(id);
    }
    for (FinishedRequest& f : step.finished) {
      if (f.id == id) out = output_of(f);
    }
  }
  if (stopped) out.finish_reason = RequestFinishReason::kStop;
  return out;
}

std::vector<float> LLM::prompt_logits(const std::vector<int32_t>& prompt) {
  if (engine_->has_unfinished()) fail("internal: prompt_logits while requests are in flight");
  const KvCacheShape& shape = rank_->kv_shape();
  const auto n = static_cast<int64_t>(prompt.size());
  if (n == 0 || n > std::min<int64_t>(shape.tokens(), engine_->config().scheduler.max_model_len)) {
    fail("a prompt of {} tokens does not fit a context of {}", n,
         engine_->config().scheduler.max_model_len);
  }
  std::vector<int32_t> table(static_cast<size_t>((n + shape.block_size - 1) / shape.block_size));
  for (size_t b = 0; b < table.size(); ++b) table[b] = static_cast<int32_t>(b);
  const auto vocab = static_cast<size_t>(runner_->vocab_size());
  const int64_t chunk = engine_->config().scheduler.max_num_batched_tokens;
  std::vector<float> logits(static_cast<size_t>(n) * vocab);
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t end = std::min(n, i + chunk);
    ForwardBatch batch;
    batch.add_sequence({prompt.begin() + i, prompt.begin() + end}, static_cast<int32_t>(i), table,
                       shape.block_size, true);
    runner_->execute(batch, logits.data() + static_cast<size_t>(i) * vocab);
  }
  engine_->reset_prefix_cache();  // the blocks used here no longer hold what it remembers
  return logits;
}

void LLM::show_progress(size_t done, size_t total) const {
  if (!progress_) return;
  const int width = 30;
  const int filled = static_cast<int>(width * done / std::max<size_t>(total, 1));
  std::fprintf(stderr, "\rProcessed prompts [%s%s] %zu/%zu", std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(), done, total);
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace shardlm
