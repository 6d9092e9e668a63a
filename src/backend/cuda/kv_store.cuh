// Writes a step's keys and values into the paged KV cache on the GPU. CPU reference:
// cpu::store_kv (backend/cpu/attention.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

// cache_k[slots[t]] = k[t], cache_v[slots[t]] = v[t]: rows of kv_dim, fp32 in, rounded to BF16
// (bits) in the cache, which halves the bytes attention reads; slots: [n] device (block *
// block_size + offset).
void store_kv(uint16_t* cache_k, uint16_t* cache_v, const float* k, const float* v,
              const int32_t* slots, int64_t n, int64_t kv_dim, cudaStream_t stream);
// The same into an FP8 E4M3 cache (--kv-cache-dtype fp8, kv_element.cuh): codes, scale 1,
// saturating.
void store_kv(uint8_t* cache_k, uint8_t* cache_v, const float* k, const float* v,
              const int32_t* slots, int64_t n, int64_t kv_dim, cudaStream_t stream);

}  // namespace shardlm::cuda
