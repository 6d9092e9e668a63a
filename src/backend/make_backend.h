// Chooses and builds the backend for `--device`: the CPU backend, or the CUDA backend when this
// build has it and a GPU is visible. The only code outside backend/cuda/ that knows CUDA exists,
// through plain C++ declarations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backend/backend.h"
#include "backend/model_shape.h"

namespace shardlm {

enum class Device { kCpu, kCuda };

std::string_view device_name(Device d);
// Whether this build has the CUDA backend, and how many GPUs it sees (0 without either).
bool cuda_built();
int cuda_device_count();
// "cpu" or "cuda"; "" or "auto" = cuda when the build has it and a GPU is visible, else cpu.
// Throws Error for other names, and for "cuda" without a CUDA build or a visible GPU.
Device resolve_device(const std::string& flag);

struct BackendSpec {
  Device device = Device::kCpu;
  int threads = 0;  // CPU threads (0 = all); the CUDA backend's host side is single-threaded
  int64_t max_batch_tokens = 512;
  int64_t max_context = 2048;
  bool enforce_eager = false;  // no CUDA graphs (--enforce-eager)
  // --quantization: "" (the weights' own types) or "fp8" (CUDA on sm_89 or newer only: FP8 E4M3
  // linear layers with a scale per output channel, backend/cuda/fp8_linear.h).
  std::string quantization;
  // --kv-cache-dtype (vLLM's flag): auto (the backend's own: fp32 on the CPU, BF16 on CUDA), bf16,
  // or fp8 / fp8_e4m3 (CUDA only: FP8 E4M3 KV, one byte per element, scale 1).
  std::string kv_cache_dtype = "auto";
};
// Whether a --kv-cache-dtype value asks for FP8 KV; throws Error for an unknown value, and for one
// the device or the model cannot hold (fp8/bf16 on the CPU, fp8 with latent attention).
bool fp8_kv_cache(const BackendSpec& spec, const ModelShape& m);
// Throws Error for a device that is not there and for a --quantization the device or the model
// cannot run (fp8 needs CUDA on sm_89 or newer and a dense model).
std::unique_ptr<Backend> make_backend(const BackendSpec& spec, const ModelShape& m);

}  // namespace shardlm
