// BlockManager: block tables, prefix-cache lookup and registration, LRU eviction.
#include "kv/block_manager.h"

#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace shardlm {

uint64_t block_hash(uint64_t parent, const int32_t* tokens, int block_size) {
  // The parent hash seeds the block's hash, so equal blocks after different prefixes differ.
  return XXH3_64bits_withSeed(tokens, static_cast<size_t>(block_size) * sizeof(int32_t), parent);
}

BlockManager::BlockManager(const BlockManagerConfig& c)
    : block_size_(c.block_size),
      prefix_caching_(c.prefix_caching),
      allocator_(c.n_blocks),
      meta_(static_cast<size_t>(c.n_blocks)),
      block_tokens_(c.prefix_caching ? static_cast<size_t>(c.n_blocks * c.block_size) : 0) {
  assert(c.block_size > 0 && c.n_blocks >= 0);
}

double BlockManager::usage() const {
  const int64_t total = total_blocks();
  return total ? static_cast<double>(total - free_blocks()) / static_cast<double>(total) : 0.0;
}

std::optional<int32_t> BlockManager::lookup(uint64_t parent, uint64_t hash,
                                            const int32_t* tokens) const {
  const auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  // Compare the stored block too, so that a 64-bit hash collision can never alias two prefixes.
  const BlockMeta& m = meta_[static_cast<size_t>(it->second)];
  const int32_t* stored = block_tokens_.data() + static_cast<size_t>(it->second) * block_size_;
  if (m.parent != parent || !std::equal(tokens, tokens + block_size_, stored)) return std::nullopt;
  return it->second;
}

void BlockManager::acquire_cached(int32_t block) {
  BlockMeta& m = meta_[static_cast<size_t>(block)];
  if (m.lru_pos) {  // evictable: the manager's reference passes to the sequence
    lru_.erase(*m.lru_pos);
    m.lru_pos.reset();
  } else {
    allocator_.retain(block);
  }
}

int32_t BlockManager::match_prefix(BlockTable& table, const std::vector<int32_t>& tokens) {
  assert(table.empty());
  if (!prefix_caching_ || tokens.empty()) return 0;
  // At least one token must run through the model to produce the next token's logits.
  const size_t max_blocks = (tokens.size() - 1) / static_cast<size_t>(block_size_);
  uint64_t parent = 0;
  for (size_t i = 0; i < max_blocks; ++i) {
    const int32_t* t = tokens.data() + i * static_cast<size_t>(block_size_);
    const uint64_t h = block_hash(parent, t, block_size_);
    const auto block = lookup(parent, h, t);
    if (!block) break;
    acquire_cached(*block);
    table.blocks.push_back(*block);
    table.hashes.push_back(h);
    parent = h;
  }
  return static_cast<int32_t>(table.blocks.size()) * block_size_;
}

void BlockManager::record_lookup(int32_t queried_tokens, int32_t hit_tokens) {
  stats_.queried_tokens += queried_tokens;
  stats_.hit_tokens += hit_tokens;
}

int64_t BlockManager::blocks_needed(const BlockTable& table, int32_t n_tokens) const {
  const int64_t want = (static_cast<int64_t>(n_tokens) + block_size_ - 1) / block_size_;
  return std::max<int64_t>(0, want - static_cast<int64_t>(table.blocks.size()));
}

bool BlockManager::can_allocate(const BlockTable& table, int32_t n_tokens) const {
  return blocks_needed(table, n_tokens) <= free_blocks();
}

void BlockManager::evict(int32_t block) {
  BlockMeta& m = meta_[static_cast<size_t>(block)];
  by_hash_.erase(m.hash);
  m.cached = false;
  ++stats_.evictions;
  if (on_event_) on_event_({KvCacheEvent::Kind::kRemoved, m.hash, 0});
}

std::optional<int32_t> BlockManager::take_block() {
  if (auto b = allocator_.allocate()) return b;
  if (lru_.empty()) return std::nullopt;
  const int32_t b = lru_.front();  // keeps the allocator's reference, now for the new owner
  lru_.pop_front();
  meta_[static_cast<size_t>(b)].lru_pos.reset();
  evict(b);
  return b;
}

bool BlockManager::allocate(BlockTable& table, int32_t n_tokens) {
  const int64_t need = blocks_needed(table, n_tokens);
  if (need > free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) table.blocks.push_back(*take_block());
  return true;
}

void BlockManager::register_block(int32_t block, uint64_t parent, uint64_t hash,
                                  const int32_t* tokens) {
  // Another sequence may have computed the same block first; keep that one as the cached copy.
  if (by_hash_.count(hash)) return;
  BlockMeta& m = meta_[static_cast<size_t>(block)];
  m.cached = true;
  m.hash = hash;
  m.parent = parent;
  std::memcpy(block_tokens_.data() + static_cast<size_t>(block) * block_size_, tokens,
              static_cast<size_t>(block_size_) * sizeof(int32_t));
  by_hash_.emplace(hash, block);
  if (on_event_) on_event_({KvCacheEvent::Kind::kStored, hash, parent});
}

void BlockManager::commit(BlockTable& table, const std::vector<int32_t>& tokens,
                          int32_t n_computed) {
  if (!prefix_caching_) return;
  const size_t full = std::min(static_cast<size_t>(n_computed) / block_size_, table.blocks.size());
  for (size_t i = table.hashes.size(); i < full; ++i) {
    const uint64_t parent = i ? table.hashes[i - 1] : 0;
    const int32_t* t = tokens.data() + i * static_cast<size_t>(block_size_);
    const uint64_t h = block_hash(parent, t, block_size_);
    register_block(table.blocks[i], parent, h, t);
    table.hashes.push_back(h);
  }
}

void BlockManager::release(int32_t block) {
  BlockMeta& m = meta_[static_cast<size_t>(block)];
  if (m.cached && allocator_.ref_count(block) == 1) {
    m.lru_pos = lru_.insert(lru_.end(), block);  // stays cached until evicted
  } else {
    allocator_.release(block);
  }
}

void BlockManager::reset_prefix_cache() {
  for (const int32_t b : lru_) {
    meta_[static_cast<size_t>(b)].lru_pos.reset();
    evict(b);
    allocator_.release(b);
  }
  lru_.clear();
  for (size_t b = 0; b < meta_.size(); ++b) {
    if (meta_[b].cached) evict(static_cast<int32_t>(b));
  }
}

void BlockManager::free(BlockTable& table) {
  // Tail first: a prefix's later blocks are useless without its earlier ones, so they should be
  // evicted before them.
  for (auto it = table.blocks.rbegin(); it != table.blocks.rend(); ++it) release(*it);
  table.blocks.clear();
  table.hashes.clear();
}

}  // namespace shardlm
