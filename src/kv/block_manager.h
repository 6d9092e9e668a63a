// Per-sequence KV block tables over a BlockAllocator, with automatic prefix caching: full blocks
// are keyed by an xxhash chained over their parent block's hash and their token ids, shared between
// sequences by reference count, and kept (evictable, LRU) after their last owner frees them.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kv/block_allocator.h"

namespace shardlm {

// The blocks of one sequence. Owned by the sequence, mutated only by BlockManager.
struct BlockTable {
  std::vector<int32_t> blocks;
  std::vector<uint64_t> hashes;  // chained hash of each leading full block that has been committed
  bool empty() const { return blocks.empty(); }
};

struct PrefixCacheStats {
  int64_t queried_tokens = 0;  // prompt tokens looked up at admission
  int64_t hit_tokens = 0;      // of those, found in the cache
  int64_t evictions = 0;
  double hit_rate() const {
    return queried_tokens ? static_cast<double>(hit_tokens) / queried_tokens : 0.0;
  }
};

struct BlockManagerConfig {
  int64_t n_blocks = 0;
  int block_size = 16;
  bool prefix_caching = true;
};

// A change to the set of cached blocks, for a listener outside the engine (a fleet router keeps an
// index of which worker holds which prefix): a block keyed by `hash` (chained over `parent`) was
// stored, or it was removed (evicted or forgotten).
struct KvCacheEvent {
  enum class Kind { kStored, kRemoved };
  Kind kind = Kind::kStored;
  uint64_t hash = 0;
  uint64_t parent = 0;  // kStored only
};
using KvEventListener = std::function<void(const KvCacheEvent&)>;

// Hash of a full block given its parent's hash (0 for the first block).
uint64_t block_hash(uint64_t parent, const int32_t* tokens, int block_size);

// Contract: only the master's scheduler calls the mutating methods, and only between steps.
// A block is in exactly one state: free (in the allocator), owned (ref count = number of sequences
// holding it) or evictable (cached, no sequence holds it; the manager keeps the allocator's one
// reference). Capacity for new blocks counts free and evictable ones.
class BlockManager {
 public:
  explicit BlockManager(const BlockManagerConfig& config);

  int block_size() const { return block_size_; }
  int64_t total_blocks() const { return allocator_.total_blocks(); }
  int64_t free_blocks() const { return allocator_.free_blocks() + evictable_size(); }
  int64_t evictable_size() const { return static_cast<int64_t>(lru_.size()); }
  int64_t cached_blocks() const { return static_cast<int64_t>(by_hash_.size()); }
  bool prefix_caching() const { return prefix_caching_; }
  double usage() const;  // fraction of blocks held by sequences
  const PrefixCacheStats& stats() const { return stats_; }
  int32_t ref_count(int32_t block) const { return allocator_.ref_count(block); }
  bool is_cached(int32_t block) const { return meta_[static_cast<size_t>(block)].cached; }

  // For an empty table: attaches the longest chain of cached full blocks that prefixes `tokens`,
  // leaving at least one token to compute. Returns the number of tokens covered. Undo with free().
  int32_t match_prefix(BlockTable& table, const std::vector<int32_t>& tokens);
  // Counts a prompt lookup into the hit-rate statistics (called once a match is kept).
  void record_lookup(int32_t queried_tokens, int32_t hit_tokens);

  int64_t blocks_needed(const BlockTable& table, int32_t n_tokens) const;
  bool can_allocate(const BlockTable& table, int32_t n_tokens) const;
  // Grows the table to hold n_tokens slots; false (table unchanged) when blocks run out.
  bool allocate(BlockTable& table, int32_t n_tokens);
  // One more slot after n_tokens: allocate(table, n_tokens + 1).
  bool append_slot(BlockTable& table, int32_t n_tokens) { return allocate(table, n_tokens + 1); }
  // Registers the table's full blocks among tokens[0, n_computed) (their K/V now written) in the
  // prefix cache.
  void commit(BlockTable& table, const std::vector<int32_t>& tokens, int32_t n_computed);
  // Drops the table's blocks: cached ones become evictable (tail first), others free.
  void free(BlockTable& table);
  // Forgets every cached block (evictable ones become free; owned ones stay owned but match no
  // future prompt): their K/V are gone, e.g. after a group re-formed with fresh caches.
  void reset_prefix_cache();
  // Called (on the scheduler's thread, inside the mutating calls) for every block stored in or
  // removed from the prefix cache. Set before the engine runs; it must not call back into this.
  void set_event_listener(KvEventListener listener) { on_event_ = std::move(listener); }

 private:
  struct BlockMeta {
    bool cached = false;  // registered in by_hash_
    uint64_t hash = 0;
    uint64_t parent = 0;
    std::optional<std::list<int32_t>::iterator> lru_pos;
  };
  std::optional<int32_t> take_block();  // a free block, else the least recently used cached one
  void evict(int32_t block);
  void acquire_cached(int32_t block);
  void release(int32_t block);
  std::optional<int32_t> lookup(uint64_t parent, uint64_t hash, const int32_t* tokens) const;
  void register_block(int32_t block, uint64_t parent, uint64_t hash, const int32_t* tokens);

  int block_size_;
  bool prefix_caching_;
  BlockAllocator allocator_;
  std::vector<BlockMeta> meta_;
  std::vector<int32_t> block_tokens_;  // [n_blocks * block_size] token ids of cached blocks
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::list<int32_t> lru_;  // evictable blocks, least recently freed first
  PrefixCacheStats stats_;
  KvEventListener on_event_;
};

}  // namespace shardlm
