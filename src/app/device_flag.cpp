// The --load-format flag (model/dummy_model.h), the --device flag (which backend runs the model,
// resolved by backend/make_backend.h) and
// --gpu-memory-utilization (how much of the GPU the engine's KV cache may fill,
// engine/kv_sizing.h).
#include "app/commands.h"
#include "app/flag_names.h"

namespace shardlm::app {

void add_device_flags(CLI::App& cmd, std::string& device, double& gpu_memory_utilization,
                      bool& enforce_eager) {
  cmd.add_flag(flag_names::kEnforceEager, enforce_eager,
               "on a GPU: run every step op by op instead of replaying decode steps as CUDA "
               "graphs (SGLang: --disable-cuda-graph)");
  cmd.add_option("--device", device,
                 "cpu or cuda (default: cuda when this build has CUDA and a GPU is visible)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd.add_option(flag_names::kGpuMemoryUtilization, gpu_memory_utilization,
                 "on a GPU without --kv-cache-memory: the fraction of its memory for weights, "
                 "activations and the KV cache (--mem-fraction-static is SGLang's name)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
}

void add_quantization_flag(CLI::App& cmd, std::string& quantization) {
  cmd.add_option(
         "--quantization", quantization,
         "fp8: quantise the linear layers' BF16/FP16 weights at load to FP8 E4M3 with a "
         "scale per output channel (CUDA, compute capability 8.9+; as vLLM's --quantization "
         "fp8), a mixture of experts' routed experts with a scale per row and 128 columns; "
         "the embedding, output projection, routers and latent-attention heads stay BF16")
      ->check([](const std::string& q) -> std::string {
        if (q == "fp8") return "";
        return "'" + q +
               "' is not supported: give fp8 (on a CUDA GPU with FP8 tensor cores), or drop the "
               "flag to run the checkpoint's own weights (FP8 and GGUF checkpoints need no flag)";
      });
}

void add_kv_cache_dtype_flag(CLI::App& cmd, std::string& kv_cache_dtype) {
  cmd.add_option("--kv-cache-dtype", kv_cache_dtype,
                 "auto: the backend's own KV type (BF16 on CUDA, fp32 on the CPU); fp8 (or "
                 "fp8_e4m3): FP8 E4M3 keys and values on CUDA, one byte per element, twice the "
                 "tokens per GiB (as vLLM's --kv-cache-dtype fp8, scale 1.0)")
      ->capture_default_str();
}

void add_load_format_flag(CLI::App& cmd, std::string& load_format) {
  cmd.add_option("--load-format", load_format,
                 "auto: read the model's weights (safetensors and gguf: the same, for vLLM "
                 "command lines); dummy: random weights for --model given as a preset "
                 "(llama-3.1-8b, qwen2.5-7b, ...) or a config.json, for benchmarks")
      ->check(CLI::IsMember({"auto", "safetensors", "gguf", "dummy"}))
      ->capture_default_str();
}

}  // namespace shardlm::app
