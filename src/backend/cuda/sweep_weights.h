// Weights for the kernel sweeps (gemv_sweep, gemm_sweep): how many copies of a matrix keep
// consecutive calls from finding it in L2, random BF16 values to fill them with, and a sweep's
// stream and device buffers, freed when it ends.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cuda/cuda_check.h"

namespace shardlm::cuda {

// A sweep's non-blocking stream and device buffers, released by the destructor.
class SweepDevice {
 public:
  SweepDevice() { SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~SweepDevice() {
    for (void* p : buffers_) cudaFree(p);
    cudaStreamDestroy(stream_);
  }
  SweepDevice(const SweepDevice&) = delete;
  SweepDevice& operator=(const SweepDevice&) = delete;

  cudaStream_t stream() const { return stream_; }
  // count elements of T, uninitialised.
  template <typename T>
  T* alloc(size_t count) {
    void* p = nullptr;
    SHARDLM_CUDA_CHECK(cudaMalloc(&p, count * sizeof(T)));
    buffers_.push_back(p);
    return static_cast<T*>(p);
  }

 private:
  cudaStream_t stream_ = nullptr;
  std::vector<void*> buffers_;
};

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
