// size_kv_on_device: the GPU memory budget after weights and activations, in KV blocks.
#include "engine/kv_sizing.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "engine/engine_args.h"

namespace shardlm {

size_t activation_bytes(const ModelConfig& c, int64_t max_batch_tokens) {
  const auto T = static_cast<size_t>(max_batch_tokens);
  const size_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.ffn_dim;
  const size_t per_token = 3 * d + q + 2 * kv + std::max(q, d) + 2 * f;  // Transformer buffers
  const size_t logits = std::min<size_t>(T, 256) * static_cast<size_t>(c.vocab_size);
  const size_t bf16_input = T * std::max({d, f, q}) / 2;  // in floats
  const size_t scratch = size_t{96} << 20;  // cuBLAS workspace, attention splits, step buffers
  return (T * per_token + logits + bf16_input) * sizeof(float) + scratch;
}

DeviceKvSizing size_kv_on_device(const EngineArgs& args, const Model& model, Backend& backend) {
  DeviceKvSizing out;
  size_t free = 0, total = 0;
  if (args.make_runner || args.num_kv_blocks > 0 || args.kv_cache_memory > 0 ||
      !backend.device_memory(free, total)) {
    return out;
  }
  const double util = args.gpu_memory_utilization;
  if (util <= 0 || util > 1) fail("--gpu-memory-utilization must be in (0, 1], got {}", util);
  const ModelConfig& c = model.config;
  backend.device_memory(free, total);
  const size_t used = total - free;  // the weights, the CUDA context, other processes
  const size_t activations = activation_bytes(c, args.max_num_batched_tokens);
  const double budget = util * static_cast<double>(total) - static_cast<double>(used + activations);
  const KvCacheShape one{
      c.n_layers, c.kv_dim(), args.block_size, 1, backend.kv_element_bytes(), c.kv_cache_values()};
  out.n_blocks = budget > 0 ? static_cast<int64_t>(budget / static_cast<double>(one.bytes())) : 0;
  const double gib = 1 << 30;
  if (out.n_blocks < 1) {
    fail(
        "--gpu-memory-utilization {} of {:.1f} GiB leaves no room for the KV cache: {:.1f} GiB are "
        "in use (weights, other processes) and the activations need {:.1f} GiB; raise "
        "--gpu-memory-utilization, lower --max-num-batched-tokens, or give --kv-cache-memory",
        util, total / gib, used / gib, activations / gib);
  }
  out.summary = fmt::format(
      "--gpu-memory-utilization {:.2f} of {:.1f} GiB: {:.2f} GiB in use after the weights, {:.2f} "
      "GiB for activations",
      util, total / gib, used / gib, activations / gib);
  return out;
}

}  // namespace shardlm
