// Lets a kernel take more than 48 KB of dynamic shared memory: cudaFuncSetAttribute, which is per
// device, once per device and kernel (so it stays out of the steps CUDA graphs capture after the
// first launch).
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>

#include "backend/cuda/cuda_check.h"

namespace shardlm::cuda {

template <auto Kernel>
void allow_shared_memory_once(int bytes) {
  static std::atomic<uint64_t> done{0};
  int device = 0;
  SHARDLM_CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t{1} << (device & 63);
  if (done.load(std::memory_order_acquire) & bit) return;
  SHARDLM_CUDA_CHECK(
      cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  done.fetch_or(bit, std::memory_order_acq_rel);
}

}  // namespace shardlm::cuda
