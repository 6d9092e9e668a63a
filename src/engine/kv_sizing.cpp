// size_kv_on_device: the GPU memory budget after weights and activations, in KV blocks.
#include "engine/kv_sizing.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "engine/engine_args.h"

namespace shardlm {

namespace {

// Floats of the mixture-of-experts FFN's scratch for T tokens (the CUDA op's, cuda_moe.h): the
// router logits, the (token, slot) pairs' ids, weights and order, their hidden and up rows, their
// outputs and gathered inputs (the grouped prefill path), and the shared expert's rows.
size_t moe_floats(const ModelConfig& c, size_t T) {
  if (!c.is_moe()) return 0;
  const size_t P = T * static_cast<size_t>(c.n_experts_used), d = c.d_model;
  const auto fe = static_cast<size_t>(c.moe_ffn_dim), fs = static_cast<size_t>(c.shared_ffn_dim);
  return T * static_cast<size_t>(c.n_experts) + 3 * P + 2 * P * fe + 2 * P * d +
         T * (3 * fs + d + 1);
}

}  // namespace

size_t mla_scratch_bytes(const ModelConfig& c, int64_t max_batch_tokens) {
  if (!c.is_mla()) return 0;
  const auto T = static_cast<size_t>(max_batch_tokens), H = static_cast<size_t>(c.n_heads);
  const auto L = static_cast<size_t>(c.kv_lora_rank), r = static_cast<size_t>(c.qk_rope_head_dim);
  const auto nope = static_cast<size_t>(c.qk_nope_head_dim), V = static_cast<size_t>(c.v_head_dim);
  const size_t keys = 4 * T;  // CudaMla::kExpandedKeysPerToken
  const size_t absorbed = T * H * (L + r) + T * H * L;
  const size_t expanded = T * H * r + T * H * V + 2 * T * H;
  const size_t bf16 = keys * (L + r) + H * keys * (nope + V);
  return (absorbed + expanded) * sizeof(float) + bf16 * 2;
}

size_t activation_bytes(const ModelConfig& c, int64_t max_batch_tokens) {
  const auto T = static_cast<size_t>(max_batch_tokens);
  const size_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), f = c.ffn_dim;
  const size_t per_token = 3 * d + q + 2 * kv + std::max(q, d) + 2 * f;  // Transformer buffers
  const size_t logits = std::min<size_t>(T, 256) * static_cast<size_t>(c.vocab_size);
  const size_t bf16_input = T * std::max({d, f, q}) / 2;  // in floats
  const size_t scratch = size_t{96} << 20;  // cuBLAS workspace, attention splits, step buffers
  return (T * per_token + logits + bf16_input + moe_floats(c, T)) * sizeof(float) +
         mla_scratch_bytes(c, max_batch_tokens) + scratch;
}

size_t graph_reserve_bytes(const EngineArgs& args) {
  return static_cast<size_t>(step_seqs(args)) << 20;
}

bool sizes_kv_from_memory(const EngineArgs& args, const Backend& backend) {
  size_t free = 0, total = 0;
  return !args.make_runner && args.num_kv_blocks <= 0 && args.kv_cache_memory <= 0 &&
         backend.device_memory(free, total);
}

DeviceKvSizing size_kv_on_device(const EngineArgs& args, const Model& model, Backend& backend,
                                 std::optional<ActivationProfile> profiled) {
  DeviceKvSizing out;
  size_t free = 0, total = 0;
  if (!sizes_kv_from_memory(args, backend) || !backend.device_memory(free, total)) return out;
  const double util = args.gpu_memory_utilization;
  if (util <= 0 || util > 1) fail("--gpu-memory-utilization must be in (0, 1], got {}", util);
  const ModelConfig& c = model.config;
  // This process's share (vLLM's per-instance meaning): what it allocated since its backend
  // started (the weights, the backend's scratch); the context and other processes are not
  // charged to it, but what they hold must leave room for the rest of the share.
  size_t at_start = 0;
  size_t own = backend.device_memory_at_start(at_start) && at_start >= free
                   ? at_start - free
                   : total - free;  // a backend that cannot tell: everything in use
  const size_t others = total - free - own;
  if (profiled) own -= std::min(own, profiled->kept);  // counted with the activations
  const auto estimate = static_cast<double>(activation_bytes(c, step_tokens(args)));
  const double activations = profiled ? static_cast<double>(profiled->bytes) +
                                            static_cast<double>(graph_reserve_bytes(args))
                                      : estimate;
  const double share = util * static_cast<double>(total);
  const double to_allocate = share - static_cast<double>(own);  // activations and the KV cache
  const double budget = to_allocate - activations;
  const KvCacheShape one{
      c.n_layers, c.kv_dim(), args.block_size, 1, backend.kv_element_bytes(), c.kv_cache_values()};
  const double gib = 1 << 30;
  if (to_allocate > static_cast<double>(free)) {
    fail(
        "--gpu-memory-utilization {} asks for {:.1f} GiB of the GPU's {:.1f} GiB for this process, "
        "but only {:.1f} GiB are free: other processes and this one's CUDA context hold "
        "{:.1f} GiB, its weights {:.1f} GiB; lower --gpu-memory-utilization (each process on a "
        "shared GPU takes its own share), stop the other processes, or give --kv-cache-memory",
        util, share / gib, total / gib, free / gib, others / gib, own / gib);
  }
  out.n_blocks = budget > 0 ? static_cast<int64_t>(budget / static_cast<double>(one.bytes())) : 0;
  if (out.n_blocks < 1) {
    fail(
        "--gpu-memory-utilization {} ({:.1f} GiB of {:.1f} GiB) leaves no room for the KV cache: "
        "this process holds {:.1f} GiB (weights) and the activations need {:.1f} GiB; raise "
        "--gpu-memory-utilization, lower --max-num-batched-tokens, or give --kv-cache-memory",
        util, share / gib, total / gib, own / gib, activations / gib);
  }
  out.summary = fmt::format(
      "--gpu-memory-utilization {:.2f}: {:.2f} of {:.1f} GiB for this process, {:.2f} GiB held "
      "(weights), {:.2f} GiB for activations ({}), {:.2f} GiB for the KV cache; {:.2f} GiB held "
      "by other processes and the CUDA context",
      util, share / gib, total / gib, own / gib, activations / gib,
      profiled ? fmt::format("measured: the largest step; estimated {:.2f}", estimate / gib)
               : std::string("estimated"),
      budget / gib, others / gib);
  return out;
}

}  // namespace shardlm
