// make_backend: the device flag's resolution and the backend factories.
#include "backend/make_backend.h"

#include <spdlog/spdlog.h>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#if SHARDLM_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace shardlm {

std::string_view device_name(Device d) {
  return d == Device::kCuda ? "cuda" : "cpu";
}

bool cuda_built() {
#if SHARDLM_HAS_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#if SHARDLM_HAS_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

Device resolve_device(const std::string& flag) {
  if (flag.empty() || flag == "auto") {
    return cuda_device_count() > 0 ? Device::kCuda : Device::kCpu;
  }
  if (flag == "cpu") return Device::kCpu;
  if (flag != "cuda") fail("--device '{}' is not a device: use cpu, cuda or auto", flag);
  if (!cuda_built()) {
    fail(
        "--device cuda: this shardlm was built without the CUDA backend; rebuild with the CUDA "
        "toolkit installed (cmake -DSHARDLM_CUDA=ON) or use --device cpu");
  }
  if (cuda_device_count() == 0) {
    fail(
        "--device cuda: no CUDA GPU is visible (check nvidia-smi, the driver and "
        "CUDA_VISIBLE_DEVICES) or use --device cpu");
  }
  return Device::kCuda;
}

namespace {

void check_quantization(const BackendSpec& s) {
  if (s.quantization.empty()) return;
  if (s.quantization != "fp8") {
    fail("--quantization '{}' is not supported: use fp8 (CUDA) or leave it out", s.quantization);
  }
  if (s.device != Device::kCuda) {
    fail(
        "--quantization fp8 runs on CUDA GPUs with FP8 tensor cores (compute capability 8.9 or "
        "newer); the CPU backend has no FP8 kernels: use --device cuda or leave the flag out");
  }
}

}  // namespace

bool fp8_kv_cache(const BackendSpec& s, const ModelShape& m) {
  const std::string& d = s.kv_cache_dtype;
  if (d.empty() || d == "auto") return false;
  const bool fp8 = d == "fp8" || d == "fp8_e4m3";
  if (!fp8 && d != "bf16") {
    fail("--kv-cache-dtype '{}' is not a KV cache type: use auto, bf16, fp8 or fp8_e4m3", d);
  }
  if (s.device != Device::kCuda) {
    fail(
        "--kv-cache-dtype {}: the CPU backend keeps its KV cache in fp32 (its attention reads "
        "fp32); leave the flag out (auto) or run on a GPU with --device cuda",
        d);
  }
  if (fp8 && m.latent_attention) {
    fail(
        "--kv-cache-dtype {}: '{}' has multi-head latent attention, whose compressed KV cache "
        "stays BF16 in this build; leave the flag out",
        d, m.name);
  }
  return fp8;
}

std::unique_ptr<Backend> make_backend(const BackendSpec& s, const ModelShape& m) {
  check_quantization(s);
  const bool fp8_kv = fp8_kv_cache(s, m);
#if SHARDLM_HAS_CUDA
  if (s.device == Device::kCuda) {
    auto o = cuda::CudaBackendOptions::for_model(m, s.max_batch_tokens, s.max_context);
    o.graphs = !s.enforce_eager;
    o.fp8_weights = s.quantization == "fp8";
    o.fp8_kv = fp8_kv;
    auto backend = std::make_unique<cuda::CudaBackend>(o);
    spdlog::info("device: cuda, {}", backend->description());
    return backend;
  }
#else
  if (s.device == Device::kCuda) fail("internal: the CUDA backend is not in this build");
#endif
  return std::make_unique<CpuBackend>(
      CpuBackendOptions::for_model(m, s.threads, s.max_batch_tokens, s.max_context));
}

}  // namespace shardlm
