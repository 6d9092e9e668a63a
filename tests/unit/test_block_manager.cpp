// BlockManager: allocation and freeing, prefix-cache sharing with reference counts, the hash chain,
// LRU eviction of cached blocks, and the disabled mode.
#include <gtest/gtest.h>

#include <numeric>

#include "kv/block_manager.h"

namespace shardlm {
namespace {

std::vector<int32_t> seq(int n, int start = 0) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

BlockManager make(int64_t n_blocks, bool caching = true) {
  return BlockManager(BlockManagerConfig{n_blocks, 4, caching});
}

TEST(BlockManager, AllocatesAndFrees) {
  auto bm = make(4);
  BlockTable t;
  EXPECT_TRUE(bm.can_allocate(t, 9));
  ASSERT_TRUE(bm.allocate(t, 9));  // 3 blocks of 4
  EXPECT_EQ(t.blocks.size(), 3u);
  EXPECT_EQ(bm.free_blocks(), 1);
  EXPECT_TRUE(bm.append_slot(t, 9));  // slot 10 fits the third block
  EXPECT_EQ(t.blocks.size(), 3u);
  EXPECT_TRUE(bm.append_slot(t, 12));  // slot 13 needs a fourth
  EXPECT_EQ(bm.free_blocks(), 0);
  EXPECT_FALSE(bm.append_slot(t, 16));
  EXPECT_EQ(t.blocks.size(), 4u);  // unchanged on failure
  bm.free(t);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(bm.free_blocks(), 4);
  EXPECT_DOUBLE_EQ(bm.usage(), 0.0);
}

TEST(BlockManager, AllocationIsAllOrNothing) {
  auto bm = make(2);
  BlockTable t;
  EXPECT_FALSE(bm.can_allocate(t, 9));
  EXPECT_FALSE(bm.allocate(t, 9));
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(bm.free_blocks(), 2);
}

TEST(BlockManager, SharesCommittedPrefixWithRefCounts) {
  auto bm = make(8);
  const auto prompt = seq(10);  // two full blocks + 2 tokens
  BlockTable a;
  EXPECT_EQ(bm.match_prefix(a, prompt), 0);
  ASSERT_TRUE(bm.allocate(a, 10));
  bm.commit(a, prompt, 10);
  EXPECT_EQ(a.hashes.size(), 2u);
  EXPECT_EQ(bm.cached_blocks(), 2);

  BlockTable b;
  EXPECT_EQ(bm.match_prefix(b, prompt), 8);
  ASSERT_EQ(b.blocks.size(), 2u);
  EXPECT_EQ(b.blocks[0], a.blocks[0]);
  EXPECT_EQ(b.blocks[1], a.blocks[1]);
  EXPECT_EQ(bm.ref_count(a.blocks[0]), 2);
  EXPECT_EQ(bm.ref_count(a.blocks[2]), 1);
  ASSERT_TRUE(bm.allocate(b, 10));
  EXPECT_NE(b.blocks[2], a.blocks[2]);  // the partial block is private

  bm.free(a);
  EXPECT_EQ(bm.ref_count(b.blocks[0]), 1);
  bm.free(b);
  EXPECT_EQ(bm.free_blocks(), 8);  // cached blocks count as free capacity
  EXPECT_EQ(bm.evictable_size(), 2);
  EXPECT_EQ(bm.cached_blocks(), 2);
}

TEST(BlockManager, MatchLeavesOneTokenToCompute) {
  auto bm = make(8);
  const auto prompt = seq(8);  // exactly two blocks
  BlockTable a;
  ASSERT_TRUE(bm.allocate(a, 8));
  bm.commit(a, prompt, 8);
  BlockTable b;
  EXPECT_EQ(bm.match_prefix(b, prompt), 4);  // not 8: the last token must run
}

TEST(BlockManager, HashChainDependsOnParent) {
  // The same second block after a different first block is a different cache entry.
  auto bm = make(8);
  std::vector<int32_t> p1 = {1, 2, 3, 4, 9, 9, 9, 9, 0};
  std::vector<int32_t> p2 = {5, 6, 7, 8, 9, 9, 9, 9, 0};
  EXPECT_NE(block_hash(block_hash(0, p1.data(), 4), p1.data() + 4, 4),
            block_hash(block_hash(0, p2.data(), 4), p2.data() + 4, 4));
  BlockTable a;
  ASSERT_TRUE(bm.allocate(a, 9));
  bm.commit(a, p1, 9);
  BlockTable b;
  EXPECT_EQ(bm.match_prefix(b, p2), 0);
  // A prompt sharing only the first block hits only that block.
  std::vector<int32_t> p3 = {1, 2, 3, 4, 9, 9, 9, 8, 0};
  BlockTable c;
  EXPECT_EQ(bm.match_prefix(c, p3), 4);
}

TEST(BlockManager, CommitOnlyFullComputedBlocks) {
  auto bm = make(8);
  const auto prompt = seq(12);
  BlockTable a;
  ASSERT_TRUE(bm.allocate(a, 12));
  bm.commit(a, prompt, 7);  // one full block computed
  EXPECT_EQ(a.hashes.size(), 1u);
  EXPECT_EQ(bm.cached_blocks(), 1);
  bm.commit(a, prompt, 12);
  EXPECT_EQ(a.hashes.size(), 3u);
}

TEST(BlockManager, EvictsLeastRecentlyFreedAndTailFirst) {
  auto bm = make(4);
  const auto pa = seq(9, 100);  // two full blocks + 1
  const auto pb = seq(5, 200);  // one full block + 1
  BlockTable a, b;
  ASSERT_TRUE(bm.allocate(a, 9));
  bm.commit(a, pa, 9);
  bm.free(a);  // a's blocks: free order a1, a0, then the partial a2 goes to the allocator
  ASSERT_TRUE(bm.allocate(b, 5));
  bm.commit(b, pb, 5);
  bm.free(b);
  EXPECT_EQ(bm.evictable_size(), 3);
  // Three blocks wanted, only one truly free: evict a1, then a0 (least recent first).
  BlockTable c;
  ASSERT_TRUE(bm.allocate(c, 12));
  EXPECT_EQ(bm.stats().evictions, 2);
  BlockTable probe;
  EXPECT_EQ(bm.match_prefix(probe, pa), 0);  // a's prefix is gone
  bm.free(probe);
  EXPECT_EQ(bm.match_prefix(probe, pb), 4);  // b's survives
  bm.free(probe);
  bm.free(c);
}

TEST(BlockManager, EvictedParentBreaksTheChain) {
  auto bm = make(3);
  const auto p = seq(9);
  BlockTable a;
  ASSERT_TRUE(bm.allocate(a, 9));
  bm.commit(a, p, 9);
  bm.free(a);  // evictable, least recent first: block 1, then block 0
  BlockTable c;
  ASSERT_TRUE(bm.allocate(c, 2));  // the truly free (partial) block
  ASSERT_TRUE(bm.allocate(c, 5));  // evicts block 1 of the prefix
  bm.free(c);
  BlockTable probe;
  EXPECT_EQ(bm.match_prefix(probe, p), 4);  // only block 0 remains
}

TEST(BlockManager, HitRateCounters) {
  auto bm = make(8);
  bm.record_lookup(10, 0);
  bm.record_lookup(10, 8);
  EXPECT_EQ(bm.stats().queried_tokens, 20);
  EXPECT_EQ(bm.stats().hit_tokens, 8);
  EXPECT_DOUBLE_EQ(bm.stats().hit_rate(), 0.4);
}

TEST(BlockManager, DisabledCachingSharesNothing) {
  auto bm = make(8, false);
  const auto prompt = seq(10);
  BlockTable a;
  ASSERT_TRUE(bm.allocate(a, 10));
  bm.commit(a, prompt, 10);
  EXPECT_EQ(bm.cached_blocks(), 0);
  BlockTable b;
  EXPECT_EQ(bm.match_prefix(b, prompt), 0);
  bm.free(a);
  EXPECT_EQ(bm.evictable_size(), 0);
  EXPECT_EQ(bm.free_blocks(), 8);
}

TEST(BlockManager, DuplicateComputeKeepsFirstCachedCopy) {
  // Two sequences admitted together compute the same prefix: only one copy is cached and the other
  // frees normally.
  auto bm = make(8);
  const auto prompt = seq(5);
  BlockTable a, b;
  ASSERT_TRUE(bm.allocate(a, 5));
  ASSERT_TRUE(bm.allocate(b, 5));
  bm.commit(a, prompt, 5);
  bm.commit(b, prompt, 5);
  EXPECT_TRUE(bm.is_cached(a.blocks[0]));
  EXPECT_FALSE(bm.is_cached(b.blocks[0]));
  bm.free(b);
  bm.free(a);
  EXPECT_EQ(bm.evictable_size(), 1);
  EXPECT_EQ(bm.free_blocks(), 8);
}

}  // namespace
}  // namespace shardlm
