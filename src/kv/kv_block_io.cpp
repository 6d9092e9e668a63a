// KV block copies between the cache's pools and host bytes.
#include "kv/kv_block_io.h"

#include <cassert>
#include <vector>

#include "core/error.h"

namespace shardlm {

namespace {

// Bytes of one pool's share of a block (block_size rows of kv_dim elements).
size_t pool_block_bytes(const KvCacheShape& s) {
  return static_cast<size_t>(s.block_size) * static_cast<size_t>(s.kv_dim) * s.elem_bytes;
}

// The pools of the cache in payload order: layer 0 K, layer 0 V, layer 1 K, ...
std::vector<float*> pools(const KvCache& cache) {
  std::vector<float*> out;
  for (int il = 0; il < cache.shape().n_layers; ++il) {
    const KvLayerView view = cache.layer(il);
    out.push_back(static_cast<float*>(view.k));  // raw bytes of the backend's KV format
    if (cache.shape().values) out.push_back(static_cast<float*>(view.v));
  }
  return out;
}

// Where `block` starts in `pool`, as floats for the backend's copies (bytes % 4 == 0 checked).
float* block_start(float* pool, int32_t block, size_t block_bytes) {
  return reinterpret_cast<float*>(reinterpret_cast<char*>(pool) + block * block_bytes);
}

size_t floats_of(size_t bytes) {
  if (bytes % sizeof(float) != 0) {
    fail("a KV block holds {} bytes per layer, not whole 4-byte words; use an even --block-size",
         bytes);
  }
  return bytes / sizeof(float);
}

}  // namespace

size_t kv_block_bytes(const KvCacheShape& shape) {
  return (shape.values ? 2u : 1u) * static_cast<size_t>(shape.n_layers) * pool_block_bytes(shape);
}

void read_kv_block(const KvCache& cache, Backend& backend, int32_t block, char* out) {
  assert(block >= 0 && block < cache.shape().n_blocks);
  const size_t bytes = pool_block_bytes(cache.shape());
  for (float* pool : pools(cache)) {
    backend.to_host(block_start(pool, block, bytes), floats_of(bytes),
                    reinterpret_cast<float*>(out));
    out += bytes;
  }
}

void write_kv_block(const KvCache& cache, Backend& backend, int32_t block, const char* in) {
  assert(block >= 0 && block < cache.shape().n_blocks);
  const size_t bytes = pool_block_bytes(cache.shape());
  for (float* pool : pools(cache)) {
    backend.from_host(reinterpret_cast<const float*>(in), floats_of(bytes),
                      block_start(pool, block, bytes));
    in += bytes;
  }
}

}  // namespace shardlm
