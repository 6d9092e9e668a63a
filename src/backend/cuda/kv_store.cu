// store_kv kernel: one block per token, threads across the row (keys and values together).
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_store.cuh"

namespace shardlm::cuda {

namespace {
__global__ void store_kv_kernel(__nv_bfloat16* cache_k, __nv_bfloat16* cache_v, const float* k,
                                const float* v, const int32_t* slots, int64_t kv_dim) {
  const int64_t t = blockIdx.x;
  const int64_t dst = static_cast<int64_t>(slots[t]) * kv_dim;
  for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    cache_k[dst + i] = __float2bfloat16_rn(k[t * kv_dim + i]);
    cache_v[dst + i] = __float2bfloat16_rn(v[t * kv_dim + i]);
  }
}
}  // namespace

void store_kv(uint16_t* cache_k, uint16_t* cache_v, const float* k, const float* v,
              const int32_t* slots, int64_t n, int64_t kv_dim, cudaStream_t stream) {
  if (n == 0) return;
  store_kv_kernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(
      reinterpret_cast<__nv_bfloat16*>(cache_k), reinterpret_cast<__nv_bfloat16*>(cache_v), k, v,
      slots, kv_dim);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
