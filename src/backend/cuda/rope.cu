// RoPE kernel: one block per token, one thread per (head, pair); the token's cos and sin per pair
// index in shared memory, computed from the step's positions (uploaded, written by no kernel)
// before the wait for the kernel ahead (pdl.cuh).
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/rope_pair.cuh"
#include "core/error.h"

namespace shardlm::cuda {

namespace {
// The token's rotation per pair index, cos and sin, computed once per block (in double, as the CPU
// does) and shared by every head: a double sincos is a long routine, and at one token per block
// the heads' share of them was most of the kernel's time.
constexpr int kMaxHalf = kMaxRopeHeadDim / 2;
__device__ __forceinline__ void rotation_table(double pos, int half, const float* inv_freq,
                                               float2* table) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) table[i] = rope_angle(pos, inv_freq[i]);
  __syncthreads();
}

__global__ void rope_kernel(float* x, const int32_t* positions, int n_heads, int head_dim,
                            bool neox, const float* inv_freq) {
  __shared__ float2 table[kMaxHalf];
  const int half = head_dim / 2;
  float* row = x + static_cast<int64_t>(blockIdx.x) * n_heads * head_dim;
  pdl_launch_dependents();
  rotation_table(positions[blockIdx.x], half, inv_freq, table);  // step inputs: no kernel writes
  pdl_wait();
  for (int item = threadIdx.x; item < n_heads * half; item += blockDim.x) {
    const int h = item / half, i = item % half;
    float* v = row + h * head_dim;
    const int2 e = rope_pair_at(i, head_dim, neox);
    const float2 y = rotate_pair(v[e.x], v[e.y], table[i]);
    v[e.x] = y.x;
    v[e.y] = y.y;
  }
}
// One block per token: q pairs, then k pairs (also written to the cache), then v into the cache.
template <typename T>  // the cache's element type (kv_element.cuh)
__global__ void rope_store_kernel(float* q, float* k, const float* v, const int32_t* positions,
                                  const int32_t* slots, int n_heads, int n_kv_heads, int head_dim,
                                  bool neox, const float* inv_freq, T* cache_k, T* cache_v) {
  __shared__ float2 table[kMaxHalf];
  const int half = head_dim / 2;
  const int64_t t = blockIdx.x, kv_dim = int64_t{n_kv_heads} * head_dim;
  pdl_launch_dependents();
  rotation_table(positions[t], half, inv_freq, table);  // while the Q/K/V kernel finishes
  pdl_wait();
  float* qr = q + t * n_heads * head_dim;
  float* kr = k + t * kv_dim;
  T* ck = cache_k + static_cast<int64_t>(slots[t]) * kv_dim;
  for (int item = threadIdx.x; item < (n_heads + n_kv_heads) * half; item += blockDim.x) {
    const bool is_k = item >= n_heads * half;
    const int local = is_k ? item - n_heads * half : item;
    const int h = local / half, i = local % half;
    float* vec = (is_k ? kr : qr) + h * head_dim;
    const int2 e = rope_pair_at(i, head_dim, neox);
    const float2 y = rotate_pair(vec[e.x], vec[e.y], table[i]);
    vec[e.x] = y.x;
    vec[e.y] = y.y;
    if (is_k) {
      store_kv_element(ck + h * head_dim + e.x, y.x);
      store_kv_element(ck + h * head_dim + e.y, y.y);
    }
  }
  T* cv = cache_v + static_cast<int64_t>(slots[t]) * kv_dim;
  for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    store_kv_element(cv + i, v[t * kv_dim + i]);
  }
}

void check_head_dim(int head_dim) {
  if (head_dim / 2 > kMaxHalf) {
    fail("the CUDA rope kernel takes head_dim up to {}, the model has {}; use --device cpu",
         2 * kMaxHalf, head_dim);
  }
}

template <typename T>
void launch_rope_store(float* q, float* k, const float* v, const int32_t* positions,
                       const int32_t* slots, int64_t n_tokens, int n_heads, int n_kv_heads,
                       int head_dim, bool neox, const float* inv_freq, T* cache_k, T* cache_v,
                       cudaStream_t stream) {
  if (n_tokens == 0) return;
  check_head_dim(head_dim);
  const int items = (n_heads + n_kv_heads) * head_dim / 2;
  // Up to 1,024 threads: at a decode step's few tokens each thread's pairs run one after another.
  const int threads = items >= 1024 ? 1024 : ((items + 31) / 32) * 32;
  launch_dependent(rope_store_kernel<T>, static_cast<unsigned>(n_tokens), threads, 0, stream, q, k,
                   v, positions, slots, n_heads, n_kv_heads, head_dim, neox, inv_freq, cache_k,
                   cache_v);
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
  check_head_dim(head_dim);
  const int items = n_heads * head_dim / 2;
  const int threads = items >= 256 ? 256 : ((items + 31) / 32) * 32;
  launch_dependent(rope_kernel, static_cast<unsigned>(n_tokens), threads, 0, stream, x, positions,
                   n_heads, head_dim, neox, inv_freq);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
