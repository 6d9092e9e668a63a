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

std::unique_ptr<Backend> make_backend(const BackendSpec& s, const ModelShape& m) {
#if SHARDLM_HAS_CUDA
  if (s.device == Device::kCuda) {
    auto o = cuda::CudaBackendOptions::for_model(m, s.max_batch_tokens, s.max_context);
    o.graphs = !s.enforce_eager;
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
