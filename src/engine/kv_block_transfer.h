// A prompt's cached KV blocks out of one engine and into another (disaggregated prefill/decode).
// The unit is a prefix-cache chain: the full blocks of the prompt a decode worker's admission can
// attach (match_prefix leaves the prompt's last token, so at most (n_prompt - 1) / block_size
// blocks), each with its chained hash and token ids, and its K/V bytes (kv/kv_block_io.h).
// Both functions run on the engine thread between steps (AsyncEngine::run_between_steps).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "kv/kv_cache.h"

namespace shardlm {

// The geometry both ends must share for the bytes to mean the same K/V.
struct KvBlockLayout {
  int n_layers = 0;
  int64_t kv_dim = 0;
  int block_size = 0;
  int elem_bytes = 0;
  bool values = true;

  static KvBlockLayout of(const KvCacheShape& shape);
  size_t block_bytes() const;
  bool operator==(const KvBlockLayout& o) const;
  std::string describe() const;
};

struct KvBlockSet {
  KvBlockLayout layout;
  std::vector<int32_t> tokens;   // the prefix the blocks hold: n_blocks * block_size token ids
  std::vector<uint64_t> hashes;  // [n_blocks] chained block hashes (kv/block_manager.h)
  // Blocks [0, first) carry no bytes: an overlapped transfer sent them in an earlier part.
  size_t first = 0;
  std::string bytes;  // [(n_blocks - first) * layout.block_bytes()] layer-major per block
  size_t n_blocks() const { return hashes.size(); }
};

// The leading blocks of `prompt` this engine holds in its prefix cache (possibly none: evicted),
// with the bytes of those from block `from` on (set.first = from, or n_blocks when fewer). A
// prefill's full blocks are cached after each step, so a chunked prefill's blocks can go out
// while its later chunks compute.
KvBlockSet export_prompt_blocks(Engine& engine, const std::vector<int32_t>& prompt,
                                size_t from = 0);

// Stores the set's blocks in this engine's prefix cache (evictable, like a finished request's),
// so that the next request with this prompt attaches them instead of computing them. Blocks it
// holds already are kept; a set without the bytes of its first blocks stores nothing unless this
// engine holds those. Returns the blocks now cached for the set's prefix. Throws Error when the
// layout differs from this engine's, or the hashes do not belong to the tokens.
int64_t import_prompt_blocks(Engine& engine, const KvBlockSet& set);

}  // namespace shardlm
