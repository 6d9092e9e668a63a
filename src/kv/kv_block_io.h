// Whole KV-cache blocks as host bytes, for moving a prompt's cached K/V between workers
// (disaggregated prefill/decode). A block's bytes are layer-major: for each layer, the block's
// block_size key rows, then its value rows (none for a latent cache), each kv_dim elements in the
// cache's element format. Copies go through Backend::to_host / from_host (host-staged on a device).
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/backend.h"
#include "kv/kv_cache.h"

namespace shardlm {

// Bytes of one block, every layer: (values ? 2 : 1) * n_layers * block_size * kv_dim * elem_bytes.
size_t kv_block_bytes(const KvCacheShape& shape);

// out: kv_block_bytes(cache.shape()) bytes.
void read_kv_block(const KvCache& cache, Backend& backend, int32_t block, char* out);
// in: kv_block_bytes(cache.shape()) bytes, written over the block's K/V.
void write_kv_block(const KvCache& cache, Backend& backend, int32_t block, const char* in);

}  // namespace shardlm
