// BlockAllocator: LIFO free list (recently freed blocks are warm in cache) + reference counts.
#include "kv/block_allocator.h"

#include <cassert>

namespace shardlm {

BlockAllocator::BlockAllocator(int64_t n_blocks) : refs_(static_cast<size_t>(n_blocks), 0) {
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

std::optional<int32_t> BlockAllocator::allocate() {
  if (free_.empty()) return std::nullopt;
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(b)] = 1;
  return b;
}

void BlockAllocator::retain(int32_t block) {
  assert(refs_[static_cast<size_t>(block)] > 0);
  ++refs_[static_cast<size_t>(block)];
}

void BlockAllocator::release(int32_t block) {
  assert(refs_[static_cast<size_t>(block)] > 0);
  if (--refs_[static_cast<size_t>(block)] == 0) free_.push_back(block);
}

}  // namespace shardlm
