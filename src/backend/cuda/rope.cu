// RoPE kernel: one block per token, one thread per (head, pair).
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/rope.cuh"

namespace shardlm::cuda {

namespace {
__global__ void rope_kernel(float* x, const int32_t* positions, int n_heads, int head_dim,
                            bool neox, const float* inv_freq) {
  const int half = head_dim / 2;
  float* row = x + static_cast<int64_t>(blockIdx.x) * n_heads * head_dim;
  const double pos = positions[blockIdx.x];
  for (int item = threadIdx.x; item < n_heads * half; item += blockDim.x) {
    const int h = item / half, i = item % half;
    double s, c;
    sincos(pos * static_cast<double>(inv_freq[i]), &s, &c);
    const float cs = static_cast<float>(c), sn = static_cast<float>(s);
    float* v = row + h * head_dim;
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * cs - x1 * sn;
    v[b] = x0 * sn + x1 * cs;
  }
}
// One block per token: q pairs, then k pairs (also written to the cache), then v into the cache.
template <typename T>  // the cache's element type (kv_element.cuh)
__global__ void rope_store_kernel(float* q, float* k, const float* v, const int32_t* positions,
                                  const int32_t* slots, int n_heads, int n_kv_heads, int head_dim,
                                  bool neox, const float* inv_freq, T* cache_k, T* cache_v) {
  const int half = head_dim / 2;
  const int64_t t = blockIdx.x, kv_dim = int64_t{n_kv_heads} * head_dim;
  const double pos = positions[t];
  float* qr = q + t * n_heads * head_dim;
  float* kr = k + t * kv_dim;
  T* ck = cache_k + static_cast<int64_t>(slots[t]) * kv_dim;
  for (int item = threadIdx.x; item < (n_heads + n_kv_heads) * half; item += blockDim.x) {
    const bool is_k = item >= n_heads * half;
    const int local = is_k ? item - n_heads * half : item;
    const int h = local / half, i = local % half;
    double s, c;
    sincos(pos * static_cast<double>(inv_freq[i]), &s, &c);
    const float cs = static_cast<float>(c), sn = static_cast<float>(s);
    float* vec = (is_k ? kr : qr) + h * head_dim;
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = vec[a], x1 = vec[b];
    const float y0 = x0 * cs - x1 * sn, y1 = x0 * sn + x1 * cs;
    vec[a] = y0;
    vec[b] = y1;
    if (is_k) {
      store_kv_element(ck + h * head_dim + a, y0);
      store_kv_element(ck + h * head_dim + b, y1);
    }
  }
  T* cv = cache_v + static_cast<int64_t>(slots[t]) * kv_dim;
  for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    store_kv_element(cv + i, v[t * kv_dim + i]);
  }
}

template <typename T>
void launch_rope_store(float* q, float* k, const float* v, const int32_t* positions,
                       const int32_t* slots, int64_t n_tokens, int n_heads, int n_kv_heads,
                       int head_dim, bool neox, const float* inv_freq, T* cache_k, T* cache_v,
                       cudaStream_t stream) {
  if (n_tokens == 0) return;
  const int items = (n_heads + n_kv_heads) * head_dim / 2;
  const int threads = items >= 256 ? 256 : ((items + 31) / 32) * 32;
  rope_store_kernel<T><<<static_cast<unsigned>(n_tokens), threads, 0, stream>>>(
      q, k, v, positions, slots, n_heads, n_kv_heads, head_dim, neox, inv_freq, cache_k, cache_v);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void rope_store_kv(float* q, float* k, const float* v, const int32_t* positions,
                   const int32_t* slots, int64_t n_tokens, int n_heads, int n_kv_heads,
                   int head_dim, bool neox, const float* inv_freq, uint16_t* cache_k,
                   uint16_t* cache_v, cudaStream_t stream) {
  launch_rope_store(q, k, v, positions, slots, n_tokens, n_heads, n_kv_heads, head_dim, neox,
                    inv_freq, cache_k, cache_v, stream);
}

void rope_store_kv(float* q, float* k, const float* v, const int32_t* positions,
                   const int32_t* slots, int64_t n_tokens, int n_heads, int n_kv_heads,
                   int head_dim, bool neox, const float* inv_freq, uint8_t* cache_k,
                   uint8_t* cache_v, cudaStream_t stream) {
  launch_rope_store(q, k, v, positions, slots, n_tokens, n_heads, n_kv_heads, head_dim, neox,
                    inv_freq, cache_k, cache_v, stream);
}

void rope(float* x, const int32_t* positions, int64_t n_tokens, int n_heads, int head_dim,
          bool neox, const float* inv_freq, cudaStream_t stream) {
  if (n_tokens == 0) return;
  const int items = n_heads * head_dim / 2;
  const int threads = items >= 256 ? 256 : ((items + 31) / 32) * 32;
  rope_kernel<<<static_cast<unsigned>(n_tokens), threads, 0, stream>>>(x, positions, n_heads,
                                                                       head_dim, neox, inv_freq);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
