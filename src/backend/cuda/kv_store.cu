// store_kv kernel: one block per token, threads across the row (keys and values together), in the
// cache's element type (kv_element.cuh).
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/kv_store.cuh"

namespace shardlm::cuda {

namespace {
template <typename T>
__global__ void store_kv_kernel(T* cache_k, T* cache_v, const float* k, const float* v,
                                const int32_t* slots, int64_t kv_dim) {
  const int64_t t = blockIdx.x;
  const int64_t dst = static_cast<int64_t>(slots[t]) * kv_dim;
  for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    store_kv_element(cache_k + dst + i, k[t * kv_dim + i]);
    store_kv_element(cache_v + dst + i, v[t * kv_dim + i]);
  }
}

template <typename T>
void launch(T* cache_k, T* cache_v, const float* k, const float* v, const int32_t* slots, int64_t n,
            int64_t kv_dim, cudaStream_t stream) {
  if (n == 0) return;
  store_kv_kernel<T>
      <<<static_cast<unsigned>(n), 128, 0, stream>>>(cache_k, cache_v, k, v, slots, kv_dim);
  SHARDLM_CUDA_CHECK_LAUNCH();
}
}  // namespace

void store_kv(uint16_t* cache_k, uint16_t* cache_v, const float* k, const float* v,
              const int32_t* slots, int64_t n, int64_t kv_dim, cudaStream_t stream) {
  launch(cache_k, cache_v, k, v, slots, n, kv_dim, stream);
}

void store_kv(uint8_t* cache_k, uint8_t* cache_v, const float* k, const float* v,
              const int32_t* slots, int64_t n, int64_t kv_dim, cudaStream_t stream) {
  launch(cache_k, cache_v, k, v, slots, n, kv_dim, stream);
}

}  // namespace shardlm::cuda
