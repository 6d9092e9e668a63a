// LLM: model loading, KV sizing and the offline generate loop.
#include "engine/llm.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "engine/kv_sizing.h"

namespace shardlm {

int model_len(const EngineArgs& args, const ModelConfig& c) {
  return args.max_model_len > 0 ? args.max_model_len : std::min(c.context_length, 4096);
}

int64_t kv_blocks(const EngineArgs& args, const ModelConfig& c, size_t elem_bytes) {
  if (args.num_kv_blocks > 0) return args.num_kv_blocks;
  const KvCacheShape one{c.n_layers, c.kv_dim(), args.block_size, 1, elem_bytes};
  const size_t bytes = args.kv_cache_memory > 0 ? args.kv_cache_memory : size_t{512} << 20;
  return static_cast<int64_t>(bytes / one.bytes());
}

// Groups make the same choice on every rank: on a device backend their ranks stage the exchanged
// activations through host memory (dist/stage_shard.h).
BackendSpec backend_spec(const EngineArgs& args, const ModelConfig& c) {
  BackendSpec spec;
  spec.device = resolve_device(args.device);
  spec.threads = args.threads;
  spec.max_batch_tokens = args.max_num_batched_tokens;
  spec.max_context = model_len(args, c);
  spec.enforce_eager = args.enforce_eager;
  return spec;
}

LLM::LLM(const EngineArgs& args) : progress_(args.show_progress && isatty(STDERR_FILENO)) {
  model_ = load_model(args.model, args.load_format);
  tokenizer_ = Tokenizer::create(model_->tokenizer);
  const ModelConfig& c = model_->config;
  EngineConfig config = engine_config(args);
  backend_ = make_backend(backend_spec(args, c), c);
  if (!args.make_runner) config.blocks.n_blocks = kv_blocks(args, c, backend_->kv_element_bytes());
  const DeviceKvSizing sized = size_kv_on_device(args, *model_, *backend_);
  if (sized.n_blocks > 0) config.blocks.n_blocks = sized.n_blocks;
  config.validate();
  const KvCacheShape shape{c.n_layers, c.kv_dim(), args.block_size, config.blocks.n_blocks,
                           backend_->kv_element_bytes()};
  if (args.make_runner) {
    runner_ = args.make_runner(*model_, *backend_, shape, args.max_num_batched_tokens);
  } else {
    // SHARDLM_DEVICE_SAMPLING=0 keeps sampling on the host (logits copied back), for comparisons.
    const char* ds = std::getenv("SHARDLM_DEVICE_SAMPLING");
    const bool device_sampling = !(ds && std::string(ds) == "0");
    runner_ = std::make_unique<TransformerRunner>(*model_, *backend_, shape,
                                                  args.max_num_batched_tokens, device_sampling);
  }
  engine_ = std::make_unique<Engine>(config, *runner_, tokenizer_.get());
  spdlog::info("KV cache: {} blocks of {} tokens = {} tokens ({:.0f} MiB); max_model_len {}",
               shape.n_blocks, shape.block_size, shape.n_blocks * shape.block_size,
               static_cast<double>(shape.bytes()) / (1 << 20), config.scheduler.max_model_len);
  if (!sized.summary.empty()) spdlog::info("KV cache sized by {}", sized.summary);
}

LLM::~LLM() = default;

EngineConfig LLM::engine_config(const EngineArgs& args) const {
  const ModelConfig& c = model_->config;
  EngineConfig e;
  e.scheduler.max_num_seqs = args.max_num_seqs;
  e.scheduler.max_num_batched_tokens = args.max_num_batched_tokens;
  e.scheduler.max_model_len = model_len(args, c);
  e.blocks.n_blocks = kv_blocks(args, c);
  e.blocks.block_size = args.block_size;
  e.blocks.prefix_caching = args.enable_prefix_caching;
  const TokenizerSpec& t = model_->tokenizer;
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
      GenerateOutput& o = outputs[index.at(f.id)];
      o.text = tokenizer_->decode(f.output, true);
      o.prompt_token_ids = std::move(f.prompt);
      o.token_ids = std::move(f.output);
      o.finish_reason = f.reason;
      o.times = f.times;
      o.n_preemptions = f.n_preemptions;
      show_progress(++done, prompts.size());
    }
  }
  return outputs;
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
