// The GPU's measured ceilings, for comparing kernels and whole steps against them: device-to-device
// copy bandwidth (bytes read plus bytes written) and the BF16 GEMM rate of the backend's own GEMM
// path (cuBLAS, FP32 accumulation and output). Timed with CUDA events after a warm-up, medians.
// Plain C++ header.
#pragma once

#include <cstdint>

namespace shardlm::cuda {

struct Ceilings {
  double copy_gb_per_s = 0;  // 1e9 bytes / s, read + write
  double gemm_tflops = 0;    // 2 m n k / s / 1e12
  double launch_us = 0;      // one small kernel, launched back to back
};

// copy_bytes: size of the copied buffer; gemm_size: m = n = k of the GEMM.
Ceilings measure_ceilings(int64_t copy_bytes = int64_t{2} << 30, int gemm_size = 8192);

}  // namespace shardlm::cuda
