// The paged key/value cache: for every layer, a pool of fixed-size blocks of block_size token slots
// holding kv_dim elements of keys and of values, in the backend's KV format (fp32 or BF16). A
// latent cache (multi-head latent attention) has one pool per layer and no values: each slot
// holds the compressed row (kv_lora_rank latent + rope key) the attention expands.
// Sequences own lists of blocks (block tables) handed out by a BlockAllocator; the cache itself
// only stores. Allocated once at start-up.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"

namespace shardlm {

struct KvCacheShape {
  int n_layers = 0;
  int64_t kv_dim = 0;
  int block_size = 16;
  int64_t n_blocks = 0;
  size_t elem_bytes = sizeof(float);  // Backend::kv_element_bytes
  bool values = true;                 // false: one pool per layer (KvLayerView::v == k)

  int64_t tokens() const { return n_blocks * block_size; }
  size_t bytes() const {
    return (values ? 2ull : 1ull) * n_layers * static_cast<size_t>(tokens() * kv_dim) * elem_bytes;
  }
};

class KvCache {
 public:
  KvCache(const KvCacheShape& shape, Backend& backend);

  const KvCacheShape& shape() const { return shape_; }
  KvLayerView layer(int il) const { return layers_[static_cast<size_t>(il)]; }

 private:
  KvCacheShape shape_;
  std::vector<KvLayerView> layers_;
};

// Maps a token position to its cache slot through a block table.
inline int32_t kv_slot(const std::vector<int32_t>& block_table, int32_t pos, int block_size) {
  return block_table[static_cast<size_t>(pos / block_size)] * block_size + pos % block_size;
}

}  // namespace shardlm
