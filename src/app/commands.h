// The shardlm subcommands. Each lives in its own file and registers itself on the CLI11 app; the
// returned callback-free design keeps main() a short dispatcher.
#pragma once

#include <CLI/CLI.hpp>

namespace shardlm::app {

void add_generate_command(CLI::App& app);
void add_tokenize_commands(CLI::App& app);  // tokenize, detokenize
void add_info_command(CLI::App& app);
void add_render_template_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_doctor_command(CLI::App& app);
void add_frontend_command(CLI::App& app);  // the fleet's router (app/cmd_frontend.cpp)

// --device cpu|cuda|auto, --gpu-memory-utilization and --enforce-eager, shared by generate,
// bench offline and serve (app/device_flag.cpp).
void add_device_flags(CLI::App& cmd, std::string& device, double& gpu_memory_utilization,
                      bool& enforce_eager);
// --quantization fp8 (app/device_flag.cpp): linear layers in FP8 E4M3 on a CUDA GPU (sm_89+).
void add_quantization_flag(CLI::App& cmd, std::string& quantization);
// --kv-cache-dtype auto|bf16|fp8|fp8_e4m3 (app/device_flag.cpp): FP8 E4M3 KV on a CUDA GPU.
void add_kv_cache_dtype_flag(CLI::App& cmd, std::string& kv_cache_dtype);
// --load-format auto|dummy (app/device_flag.cpp).
void add_load_format_flag(CLI::App& cmd, std::string& load_format);

}  // namespace shardlm::app
