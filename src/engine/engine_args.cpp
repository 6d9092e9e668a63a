// model_len, kv_blocks and backend_spec: the sizes EngineArgs give.
#include "engine/engine_args.h"

#include <algorithm>

namespace shardlm {

namespace {

bool on_gpu(const EngineArgs& args) {
  return resolve_device(args.device) == Device::kCuda;
}

}  // namespace

int step_seqs(const EngineArgs& args) {
  if (args.max_num_seqs > 0) return args.max_num_seqs;
  return on_gpu(args) ? 256 : 64;
}

int step_tokens(const EngineArgs& args) {
  if (args.max_num_batched_tokens > 0) return args.max_num_batched_tokens;
  return on_gpu(args) ? 8192 : 512;
}

int model_len(const EngineArgs& args, const ModelConfig& c) {
  return args.max_model_len > 0 ? args.max_model_len : std::min(c.context_length, 4096);
}

int64_t kv_blocks(const EngineArgs& args, const ModelConfig& c, size_t elem_bytes) {
  if (args.num_kv_blocks > 0) return args.num_kv_blocks;
  const KvCacheShape one{c.n_layers, c.kv_dim(), args.block_size,
                         1,          elem_bytes, c.kv_cache_values()};
  const size_t bytes = args.kv_cache_memory > 0 ? args.kv_cache_memory : size_t{512} << 20;
  return static_cast<int64_t>(bytes / one.bytes());
}

// Groups make the same choice on every rank: on a device backend their ranks stage the exchanged
// activations through host memory (parallel/stage_shard.h).
BackendSpec backend_spec(const EngineArgs& args, const ModelConfig& c) {
  BackendSpec spec;
  spec.device = resolve_device(args.device);
  spec.threads = args.threads;
  spec.max_batch_tokens = step_tokens(args);
  spec.max_context = model_len(args, c);
  spec.enforce_eager = args.enforce_eager;
  spec.quantization = args.quantization;
  spec.kv_cache_dtype = args.kv_cache_dtype;
  return spec;
}

}  // namespace shardlm
