// KV cache sizing on a GPU: --gpu-memory-utilization of the card's memory is this process's share
// (vLLM's per-instance meaning: two processes on one GPU can take 0.45 each); less what the
// process already holds (the weights, uploaded first; Backend::device_memory_at_start) and the
// activations (the largest step measured, or an estimate), it becomes KV blocks. The share must fit in what is free. Used by RankRuntime for a single process on a device backend when neither --kv-cache-memory
// nor a block count is given; groups keep kv_blocks() so that every rank computes the same.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "engine/activation_profile.h"
#include "model/model.h"

namespace shardlm {

struct EngineArgs;

struct DeviceKvSizing {
  int64_t n_blocks = 0;  // 0: not sized here (CPU backend, or sizes given)
  std::string summary;   // for the start-up log
};

// Device bytes of the Transformer's activation buffers and the backend's scratch for batches of
// max_batch_tokens (an upper estimate; a mixture-of-experts model's per-pair expert rows too).
size_t activation_bytes(const ModelConfig& c, int64_t max_batch_tokens);
// Of which latent attention's scratch (deepseek_v2/v3; 0 for other models), as the CUDA op holds
// it (backend/cuda/cuda_mla.h): the absorbed form's queries and latent outputs per token and head;
// the expanded form's rotated query parts, one pass's output and log-sum-exps, and its gathered
// rows with their per-head keys and values (BF16) for 4 keys a token of the budget.
size_t mla_scratch_bytes(const ModelConfig& c, int64_t max_batch_tokens);

// What the decode steps' CUDA graphs, captured after the profile (one per batch size), take
// beside the profiled step: 1 MiB per sequence of --max-num-seqs (an H200 measured 0.2-0.35 MiB
// per captured batch size).
size_t graph_reserve_bytes(const EngineArgs& args);

// True when size_kv_on_device sizes the cache from memory (a device backend, no sizes given).
bool sizes_kv_from_memory(const EngineArgs& args, const Backend& backend);

// Sizes the cache from the memory left once the weights are on the device (RankRuntime uploads
// them first) and the activations: the largest step as measured where `profiled`
// (engine/activation_profile.h; the scratch it left allocated is part of it, not of the weights)
// plus graph_reserve_bytes, else activation_bytes' estimate. Throws Error naming the flags to change when nothing is left
// for it.
DeviceKvSizing size_kv_on_device(const EngineArgs& args, const Model& model, Backend& backend,
                                 std::optional<ActivationProfile> profiled = std::nullopt);

}  // namespace shardlm
