// The activation memory of the largest step, measured rather than estimated (issue 16): before the
// KV cache is sized, a temporary runner (its own small KV cache and Transformer over the prepared
// weights) runs one step of max_tokens prompt tokens spread over up to max_seqs sequences, each
// sampling its last row as a serving step does, and the device memory it took beyond its KV cache
// is the figure. Its buffers are freed afterwards; what the backend's own scratch grew to during
// the step stays allocated, and the real runner reuses it.
#pragma once

#include <cstdint>
#include <optional>

#include "backend/backend.h"
#include "model/model.h"
#include "model/weight_set_of.h"

namespace shardlm {

struct ActivationProfileSpec {
  int64_t max_tokens = 0;  // the engine's tokens per step (--max-num-batched-tokens)
  int max_seqs = 1;        // and sequences per step (--max-num-seqs)
  int block_size = 16;
  bool device_sampling = true;  // sample on the device as the runner will (else logits to host)
};

struct ActivationProfile {
  size_t bytes = 0;  // device memory the largest step took beyond the weights and its KV cache
  size_t kept = 0;   // of which the backend still holds afterwards (its grown scratch)
};

// The largest step's activations, measured; nullopt where the backend reports no device memory,
// or SHARDLM_PROFILE_ACTIVATIONS=0 asks for the estimate (engine/kv_sizing.h's activation_bytes).
// Throws Error when the step itself fails (out of memory: the message names the flags to lower).
std::optional<ActivationProfile> profile_activations(const Model& model, Backend& backend,
                                                     const BackendWeights& weights,
                                                     const ActivationProfileSpec& spec);

}  // namespace shardlm
