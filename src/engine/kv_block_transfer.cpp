// Export and import of a prompt's prefix-cache blocks, through the block manager's own calls.
#include "engine/kv_block_transfer.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "kv/kv_block_io.h"

namespace shardlm {

KvBlockLayout KvBlockLayout::of(const KvCacheShape& s) {
  return {s.n_layers, s.kv_dim, s.block_size, static_cast<int>(s.elem_bytes), s.values};
}

size_t KvBlockLayout::block_bytes() const {
  return (values ? 2u : 1u) * static_cast<size_t>(n_layers) * static_cast<size_t>(block_size) *
         static_cast<size_t>(kv_dim) * static_cast<size_t>(elem_bytes);
}

bool KvBlockLayout::operator==(const KvBlockLayout& o) const {
  return n_layers == o.n_layers && kv_dim == o.kv_dim && block_size == o.block_size &&
         elem_bytes == o.elem_bytes && values == o.values;
}

std::string KvBlockLayout::describe() const {
  return fmt::format("{} layers, kv_dim {}, block size {}, {}-byte elements{}", n_layers, kv_dim,
                     block_size, elem_bytes, values ? "" : ", latent");
}

KvBlockSet export_prompt_blocks(Engine& engine, const std::vector<int32_t>& prompt, size_t from) {
  BlockManager& blocks = engine.block_manager_between_steps();
  ModelRunner& runner = engine.runner();
  KvBlockSet set;
  set.layout = KvBlockLayout::of(runner.kv_block_shape());
  BlockTable table;
  // Attaching holds the blocks (no eviction while they are read); free() gives them back.
  const int32_t covered = blocks.match_prefix(table, prompt);
  set.tokens.assign(prompt.begin(), prompt.begin() + covered);
  set.hashes = table.hashes;
  set.first = std::min(from, table.blocks.size());
  const size_t bytes = set.layout.block_bytes();
  set.bytes.resize((table.blocks.size() - set.first) * bytes);
  for (size_t i = set.first; i < table.blocks.size(); ++i) {
    runner.read_kv_block(table.blocks[i], set.bytes.data() + (i - set.first) * bytes);
  }
  blocks.free(table);
  return set;
}

namespace {

void check_set(const KvBlockSet& set, const KvBlockLayout& mine) {
  if (!(set.layout == mine)) {
    fail(
        "the KV blocks are of another layout ({}) than this worker's cache ({}); prefill and "
        "decode workers must serve the same model with the same --block-size",
        set.layout.describe(), mine.describe());
  }
  const size_t n = set.n_blocks();
  if (set.first > n || set.tokens.size() != n * static_cast<size_t>(mine.block_size) ||
      set.bytes.size() != (n - set.first) * mine.block_bytes()) {
    fail("the KV block set is inconsistent: {} hashes (bytes from block {}), {} tokens, {} bytes",
         n, set.first, set.tokens.size(), set.bytes.size());
  }
  uint64_t parent = 0;
  for (size_t i = 0; i < n; ++i) {
    parent = block_hash(parent, set.tokens.data() + i * mine.block_size, mine.block_size);
    if (parent != set.hashes[i]) fail("block {}'s hash does not match its tokens", i);
  }
}

}  // namespace

int64_t import_prompt_blocks(Engine& engine, const KvBlockSet& set) {
  BlockManager& blocks = engine.block_manager_between_steps();
  ModelRunner& runner = engine.runner();
  const KvBlockLayout mine = KvBlockLayout::of(runner.kv_block_shape());
  check_set(set, mine);
  if (set.n_blocks() == 0 || !blocks.prefix_caching()) return 0;
  // match_prefix keeps one token back: give it one more than the prefix the blocks cover.
  std::vector<int32_t> tokens = set.tokens;
  tokens.push_back(0);
  BlockTable table;
  const int32_t held = blocks.match_prefix(table, tokens);
  const auto n_held = static_cast<size_t>(held / mine.block_size);
  const auto n_tokens = static_cast<int32_t>(set.tokens.size());
  // No room now, or an earlier part's blocks are gone: the decode worker computes the rest.
  if (n_held < set.first || !blocks.allocate(table, n_tokens)) {
    blocks.free(table);
    return static_cast<int64_t>(n_held);
  }
  const size_t bytes = mine.block_bytes();
  for (size_t i = n_held; i < table.blocks.size(); ++i) {
    runner.write_kv_block(table.blocks[i], set.bytes.data() + (i - set.first) * bytes);
  }
  blocks.commit(table, set.tokens, n_tokens);
  blocks.free(table);
  return static_cast<int64_t>(set.n_blocks());
}

}  // namespace shardlm
