// measure_ceilings: a large cudaMemcpy device-to-device, a large BF16 GEMM through Gemm and a run
// of tiny kernels (to_bf16 on 256 elements), each the median of many timed repetitions on random
// (never zero) data.
#include "backend/cuda/ceilings.h"

#include <algorithm>
#include <random>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/gemm.h"
#include "core/fp16.h"

namespace shardlm::cuda {

namespace {

// Random bf16 values (bits) in [-1, 1).
std::vector<uint16_t> random_bf16(size_t n) {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = fp32_to_bf16(u(rng));
  return v;
}

}  // namespace

Ceilings measure_ceilings(int64_t copy_bytes, int gemm_size) {
  cudaStream_t s;
  SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  Ceilings c;
  {
    void *src, *dst;
    SHARDLM_CUDA_CHECK(cudaMalloc(&src, static_cast<size_t>(copy_bytes)));
    SHARDLM_CUDA_CHECK(cudaMalloc(&dst, static_cast<size_t>(copy_bytes)));
    const auto fill = random_bf16(static_cast<size_t>(copy_bytes) / 2);
    SHARDLM_CUDA_CHECK(cudaMemcpy(src, fill.data(), fill.size() * 2, cudaMemcpyHostToDevice));
    const double ms = median_ms(s, 20, [&] {
      SHARDLM_CUDA_CHECK(
          cudaMemcpyAsync(dst, src, static_cast<size_t>(copy_bytes), cudaMemcpyDeviceToDevice, s));
    });
    c.copy_gb_per_s = 2.0 * static_cast<double>(copy_bytes) / (ms * 1e-3) / 1e9;
    cudaFree(src);
    cudaFree(dst);
  }
  {
    const size_t n = static_cast<size_t>(gemm_size) * gemm_size;
    uint16_t *w, *x;
    float* y;
    SHARDLM_CUDA_CHECK(cudaMalloc(&w, n * 2));
    SHARDLM_CUDA_CHECK(cudaMalloc(&x, n * 2));
    SHARDLM_CUDA_CHECK(cudaMalloc(&y, n * 4));
    const auto fill = random_bf16(n);
    SHARDLM_CUDA_CHECK(cudaMemcpy(w, fill.data(), n * 2, cudaMemcpyHostToDevice));
    SHARDLM_CUDA_CHECK(cudaMemcpy(x, fill.data(), n * 2, cudaMemcpyHostToDevice));
    Gemm gemm(s);
    const double ms =
        median_ms(s, 10, [&] { gemm.bf16(w, gemm_size, gemm_size, x, gemm_size, y); });
    c.gemm_tflops = 2.0 * static_cast<double>(n) * gemm_size / (ms * 1e-3) / 1e12;
    const int launches = 1000;
    float* small = reinterpret_cast<float*>(y);
    const double lms = median_ms(s, 5, [&] {
      for (int i = 0; i < launches; ++i) to_bf16(small, 256, x, s);
    });
    c.launch_us = lms * 1e3 / launches;
    cudaFree(w);
    cudaFree(x);
    cudaFree(y);
  }
  cudaStreamDestroy(s);
  return c;
}

}  // namespace shardlm::cuda
