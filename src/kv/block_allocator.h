// Hands out KV cache blocks from a free list, with reference counts so that blocks can later be
// shared between sequences (prefix caching). Only the master's scheduler mutates it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace shardlm {

class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t n_blocks);

  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t total_blocks() const { return static_cast<int64_t>(refs_.size()); }
  std::optional<int32_t> allocate();  // nullopt when exhausted
  void retain(int32_t block);         // one more owner
  void release(int32_t block);        // drops one owner; frees at zero
  int32_t ref_count(int32_t block) const { return refs_[static_cast<size_t>(block)]; }

 private:
  std::vector<int32_t> free_;
  std::vector<int32_t> refs_;
};

}  // namespace shardlm
