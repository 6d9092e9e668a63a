// RankRuntime: load -> backend -> upload -> KV size.
#include "engine/rank_runtime.h"

#include <spdlog/spdlog.h>

#include "backend/cpu/cpu_backend.h"
#include "core/env_flag.h"
#include "engine/activation_profile.h"
#include "engine/kv_sizing.h"
#include "model/fp8_checkpoint.h"
#include "model/model_shape.h"
#include "model/weight_set_of.h"

namespace shardlm {

namespace {

const char* why_bf16(const BackendSpec& spec, const Model& m) {
  if (spec.device == Device::kCpu) {
    return "SHARDLM_CPU_FP8_GROUPS=0; without it the CPU keeps them in FP8 in about half the "
           "memory";
  }
  if (m.config.n_experts > 0 || m.config.is_mla()) {
    return "expert and latent-attention layers run BF16 weights";
  }
  return "no kernel here multiplies by block scales";
}

// An FP8 checkpoint's matrices stay as the file holds them until each rank prepares the ones it
// holds (fp8_at_bind.h). A dense model with per-tensor or per-channel scales on CUDA GPUs, alone or
// in a tensor/pipeline group, runs them in FP8 as published: each rank's backend takes its rows
// and columns as FP8 rows with the checkpoint's scales (prepare_model_weights). The CPU (unless
// SHARDLM_CPU_FP8_GROUPS=0) keeps every matrix whose scales are whole groups of 128 columns (all
// formats) in FP8 with its own scales, applied to each group's sum. Everywhere else each rank
// dequantises its share to BF16 as it prepares it. Returns the spec's quantization.
std::string fp8_checkpoint_quantization(const BackendSpec& spec, const Model& m) {
  if (!spec.quantization.empty() && spec.quantization != "fp8") {
    fail("'{}' is an FP8 checkpoint: --quantization '{}' does not apply to it; leave the flag out",
         m.path, spec.quantization);
  }
  if (spec.device == Device::kCuda && checkpoint_fp8_runs_as_rows(m)) {
    spdlog::info("'{}': FP8 checkpoint: runs in FP8 as published, with its own scales", m.path);
    return "fp8";
  }
  if (spec.device == Device::kCpu && CpuBackend::keeps_fp8_groups()) {
    spdlog::info(
        "'{}': FP8 checkpoint: each rank keeps the matrices it holds in FP8 with their own scales "
        "(a scale per 128 columns: about half the memory of BF16 copies; SHARDLM_CPU_FP8_GROUPS=0 "
        "dequantises them instead)",
        m.path);
    return spec.quantization;
  }
  spdlog::info(
      "'{}': FP8 checkpoint: each rank dequantises the matrices it holds to BF16 as it "
      "prepares them ({})",
      m.path, why_bf16(spec, m));
  return spec.quantization;
}

}  // namespace

RankRuntime::RankRuntime(const EngineArgs& args, Placement placement, std::unique_ptr<Model> loaded)
    : placement_(placement), model_(std::move(loaded)) {
  if (!model_) model_ = load_model(args.model, args.load_format);
  const ModelConfig& c = model_->config;
  // The backend first in a group too: the handshake reports its device, and NCCL connects on its
  // stream.
  BackendSpec spec = backend_spec(args, c);
  if (has_checkpoint_fp8(*model_)) {
    spec.quantization = fp8_checkpoint_quantization(spec, *model_);
  }
  backend_ = make_backend(spec, model_shape(c));
  if (placement_ == Placement::kAlone)
    weights_ = prepare_model_weights(*backend_, c, model_->weights);
  size_kv_cache(args);
}

void RankRuntime::size_kv_cache(const EngineArgs& args) {
  const ModelConfig& c = model_->config;
  const size_t elem = backend_->kv_element_bytes();
  kv_shape_ = {c.n_layers, c.kv_dim(), args.block_size, 0, elem, c.kv_cache_values()};
  if (placement_ == Placement::kInGroup) {
    kv_shape_.n_blocks = kv_blocks(args, c);  // fp32's count, the same on every rank
    return;
  }
  std::optional<ActivationProfile> profiled;
  if (sizes_kv_from_memory(args, *backend_)) {
    profiled = profile_activations(
        *model_, *backend_, weights_,
        {step_tokens(args), step_seqs(args), args.block_size, device_sampling()});
  }
  const DeviceKvSizing sized = size_kv_on_device(args, *model_, *backend_, profiled);
  kv_shape_.n_blocks = sized.n_blocks > 0 ? sized.n_blocks : kv_blocks(args, c, elem);
  kv_summary_ = sized.summary;
}

std::unique_ptr<ModelRunner> RankRuntime::make_runner(int64_t max_batch_tokens) {
  return std::make_unique<TransformerRunner>(*model_, *backend_, kv_shape_, max_batch_tokens,
                                             device_sampling(), &weights_);
}

bool RankRuntime::device_sampling() const {
  return env_flag("SHARDLM_DEVICE_SAMPLING", true) && !backend_->host_memory();
}

}  // namespace shardlm
