// KvCache: one key pool and one value pool per layer (or one latent pool), from backend memory.
#include "kv/kv_cache.h"

namespace shardlm {

KvCache::KvCache(const KvCacheShape& shape, Backend& backend) : shape_(shape) {
  shape_.elem_bytes = backend.kv_element_bytes();
  const size_t per_layer = static_cast<size_t>(shape.tokens() * shape.kv_dim);
  for (int il = 0; il < shape.n_layers; ++il) {
    void* k = backend.alloc_kv(per_layer);
    void* v = shape.values ? backend.alloc_kv(per_layer) : k;
    layers_.push_back({k, v, backend.kv_dtype(), backend.memory_space()});
  }
}

}  // namespace shardlm
