// Session construction shared by generate, tokenize, info and bench.
#include "app/model_session.h"

#include <algorithm>

#include "app/commands.h"
#include "app/default_model.h"
#include "backend/make_backend.h"

namespace shardlm::app {

std::unique_ptr<Model> open_model(const std::string& flag, const std::string& load_format) {
  return load_model(resolve_model(flag, load_format), load_format);
}

std::unique_ptr<Tokenizer> open_tokenizer(const Model& model) {
  return Tokenizer::create(model.tokenizer);
}

ModelSession open_session(const SessionOptions& o) {
  ModelSession s;
  s.model = open_model(o.model, o.load_format);
  s.tokenizer = open_tokenizer(*s.model);
  GeneratorOptions g;
  g.max_context = o.ctx_size > 0 ? o.ctx_size : std::min(s.model->config.context_length, 4096);
  g.max_batch_tokens = std::max(1, o.batch_size);
  BackendSpec spec;
  spec.device = resolve_device(o.device);
  spec.threads = o.threads;
  spec.max_batch_tokens = g.max_batch_tokens;
  spec.max_context = g.max_context;
  spec.enforce_eager = o.enforce_eager;
  s.backend = make_backend(spec, s.model->config);
  s.generator = std::make_unique<Generator>(*s.model, *s.tokenizer, *s.backend, g);
  return s;
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
  add_load_format_flag(cmd, o.load_format);
}

}  // namespace shardlm::app
