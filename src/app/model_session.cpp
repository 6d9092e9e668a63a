// The model flags shared by generate, tokenize, info and bench, and the engine they ask for.
#include "app/model_session.h"

#include <algorithm>

#include "app/commands.h"
#include "app/default_model.h"

namespace shardlm::app {

std::unique_ptr<Model> open_model(const std::string& flag, const std::string& load_format) {
  return load_model(resolve_model(flag, load_format), load_format);
}

std::unique_ptr<Tokenizer> open_tokenizer(const Model& model) {
  return Tokenizer::create(model.tokenizer);
}

EngineArgs engine_args(const SessionOptions& o, int n_seqs) {
  EngineArgs args;
  args.model = resolve_model(o.model, o.load_format);
  args.load_format = o.load_format;
  args.threads = o.threads;
  args.max_model_len = o.ctx_size;
  args.max_num_batched_tokens = std::max(1, o.batch_size);
  args.max_num_seqs = n_seqs;
  args.device = o.device;
  args.gpu_memory_utilization = o.gpu_memory_utilization;
  args.enforce_eager = o.enforce_eager;
  args.quantization = o.quantization;
  args.kv_cache_dtype = o.kv_cache_dtype;
  if (n_seqs == 1) {
    const int ctx = o.ctx_size > 0 ? o.ctx_size : 4096;
    args.num_kv_blocks = (ctx + args.block_size - 1) / args.block_size;
  }
  return args;
}

void add_session_flags(CLI::App& cmd, SessionOptions& o) {
  cmd.add_option("-m,--model", o.model,
                 "GGUF file or Hugging Face model directory (default: SmolLM2-135M-Instruct Q4_1)");
  cmd.add_option("-t,--threads", o.threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  cmd.add_option("-c,--ctx-size", o.ctx_size, "context length (default: the model's, at most 4096)")
      ->check(CLI::Range(0, 1 << 20));
  cmd.add_option("-b,--batch-size", o.batch_size, "prompt tokens per forward step")
      ->check(CLI::Range(1, 65536));
  add_device_flags(cmd, o.device, o.gpu_memory_utilization, o.enforce_eager);
  add_quantization_flag(cmd, o.quantization);
  add_kv_cache_dtype_flag(cmd, o.kv_cache_dtype);
  add_load_format_flag(cmd, o.load_format);
}

}  // namespace shardlm::app
