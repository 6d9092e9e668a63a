// Weights for the kernel sweeps (gemv_sweep, gemm_sweep): how many copies of a matrix keep
// consecutive calls from finding it in L2, and random BF16 values to fill them with.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cuda/cuda_check.h"

namespace shardlm::cuda {

// Copies of `bytes` of weights so that consecutive calls never read what L2 (50 MB on an
// H100/H200) still holds: at least 256 MiB in all, 2 to 16 copies.
inline int weight_copies_for(size_t bytes) {
  const size_t want = (size_t{256} << 20) / std::max<size_t>(bytes, 1) + 1;
  return static_cast<int>(std::clamp<size_t>(want, 2, 16));
}

// n random BF16 values of magnitude below 1 (either sign) from a cheap LCG, copied to dev: the
// values only need to be non-zero.
inline void fill_random_bf16(uint16_t* dev, size_t n, uint32_t seed) {
  std::vector<uint16_t> host(n);
  for (auto& h : host) {
    seed = seed * 1664525u + 1013904223u;
    h = static_cast<uint16_t>(0x3800u | ((seed >> 16) & 0x87ffu));  // |x| in [2^-15, 1)
  }
  SHARDLM_CUDA_CHECK(cudaMemcpy(dev, host.data(), n * 2, cudaMemcpyHostToDevice));
}

}  // namespace shardlm::cuda
