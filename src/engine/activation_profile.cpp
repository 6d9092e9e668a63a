// profile_activations: one largest step on a temporary runner, its device memory measured.
#include "engine/activation_profile.h"

#include <algorithm>
#include <vector>

#include "core/env_flag.h"
#include "kv/kv_cache.h"
#include "model/forward_batch.h"
#include "model/transformer.h"

namespace shardlm {

namespace {

// max_tokens prompt tokens over the sequences (at least two tokens each, so that the step is never
// taken for a decode step and captured as a graph), every sequence's blocks its own, ids spread
// over the vocabulary (a mixture of experts routes them to many experts).
ForwardBatch largest_step(const ActivationProfileSpec& spec, int32_t vocab, int64_t& n_blocks) {
  const int64_t T = spec.max_tokens;
  const int64_t S = std::clamp<int64_t>(std::min<int64_t>(spec.max_seqs, T / 2), 1, T);
  ForwardBatch b;
  n_blocks = 0;
  int64_t next_id = 0;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t len = T / S + (s < T % S ? 1 : 0);
    std::vector<int32_t> chunk(static_cast<size_t>(len));
    for (auto& t : chunk) t = static_cast<int32_t>((next_id++ * 7919) % vocab);
    std::vector<int32_t> table(static_cast<size_t>((len + spec.block_size - 1) / spec.block_size));
    for (auto& blk : table) blk = static_cast<int32_t>(n_blocks++);
    b.add_sequence(chunk, 0, table, spec.block_size, false);
  }
  return b;
}

// Runs the step as the engine would; returns once its result is on the host.
void run_step(Transformer& t, const ForwardBatch& b, int32_t vocab, bool device_sampling) {
  const size_t rows = b.logit_rows.size();
  if (!device_sampling) {
    std::vector<float> logits(rows * static_cast<size_t>(vocab));
    t.forward(b, logits.data());
    return;
  }
  RowSampling r;  // the sampler's full path: temperature, top-k and top-p cuts
  r.top_k = 50;
  r.top_p = 0.9f;
  std::vector<RowSampling> params(rows, r);
  std::vector<int32_t> tokens(rows);
  t.forward_sampled(b, params.data(), tokens.data());
}

size_t free_memory(const Backend& backend) {
  size_t free = 0, total = 0;
  backend.device_memory(free, total);
  return free;
}

}  // namespace

std::optional<ActivationProfile> profile_activations(const Model& model, Backend& backend,
                                                     const BackendWeights& weights,
                                                     const ActivationProfileSpec& spec) {
  size_t free_before = 0, total = 0;
  if (!env_flag("SHARDLM_PROFILE_ACTIVATIONS", true) || spec.max_tokens < 1 ||
      !backend.device_memory(free_before, total)) {
    return std::nullopt;
  }
  const ModelConfig& c = model.config;
  int64_t n_blocks = 0;
  const ForwardBatch step = largest_step(spec, c.vocab_size, n_blocks);
  const KvCacheShape shape{
      c.n_layers,         c.kv_dim(), spec.block_size, n_blocks, backend.kv_element_bytes(),
      c.kv_cache_values()};
  const size_t mark = backend.allocation_mark();
  size_t free_with_kv = 0, free_after = 0;
  try {
    KvCache kv(shape, backend);
    free_with_kv = free_memory(backend);
    Transformer t(model, backend, kv, spec.max_tokens, 0, -1, &weights);
    run_step(t, step, c.vocab_size, spec.device_sampling);
    free_after = free_memory(backend);
  } catch (...) {
    backend.free_allocations_since(mark);
    throw;
  }
  backend.free_allocations_since(mark);
  const size_t free_released = free_memory(backend);
  ActivationProfile p;
  p.bytes = free_with_kv > free_after ? free_with_kv - free_after : 0;
  p.kept = free_before > free_released ? free_before - free_released : 0;
  return p;
}

}  // namespace shardlm
