// BPE vocabulary, merge table and merge loop.
#include "tokenizer/bpe_model.h"

#include <algorithm>

#include "core/error.h"

namespace shardlm {

BpeModel::BpeModel(const TokenizerSpec& spec) : tokens_(&spec.tokens) {
  token_to_id_.reserve(spec.tokens.size());
  for (size_t id = 0; id < spec.tokens.size(); ++id) {
    // The first id wins for duplicated texts, as HF's vocabulary map and llama.cpp keep it.
    token_to_id_.emplace(spec.tokens[id], static_cast<int32_t>(id));
  }
  if (!spec.merges.empty()) {
    add_ranked_merges(spec);
  } else if (!spec.scores.empty()) {
    add_scored_merges(spec);
  }
}

void BpeModel::add_ranked_merges(const TokenizerSpec& spec) {
  merges_.reserve(spec.merges.size());
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const std::string& merge = spec.merges[rank];
    // Split at the first space after the first character, so a left side may itself be a space.
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) {
      fail("tokenizer merge #{} '{}' is not of the form 'left right'", rank, merge);
    }
    const std::string_view left(merge.data(), space);
    const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
    const auto a = find(left), b = find(right);
    const auto result = find(std::string(left) + std::string(right));
    if (!a || !b || !result) {
      fail(
          "tokenizer merge #{} '{}' names a token that is not in the vocabulary; the vocabulary "
          "and "
          "merges do not belong together",
          rank, merge);
    }
    // A pair listed twice keeps its first (best) rank.
    merges_.emplace(pair_key(*a, *b), Merge{static_cast<int32_t>(rank), *result});
  }
}

void BpeModel::add_scored_merges(const TokenizerSpec& spec) {
  if (spec.scores.size() != spec.tokens.size()) {
    fail("tokenizer has {} scores for {} tokens", spec.scores.size(), spec.tokens.size());
  }
  // Rank tokens by score, highest first; equal scores share a rank so the leftmost pair wins.
  std::vector<int32_t> order(spec.tokens.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t x, int32_t y) { return spec.scores[x] > spec.scores[y]; });
  std::vector<int32_t> rank_of(order.size());
  int32_t rank = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0 && spec.scores[order[i]] != spec.scores[order[i - 1]]) rank = static_cast<int32_t>(i);
    rank_of[order[i]] = rank;
  }
  const bool typed = spec.token_types.size() == spec.tokens.size();
  for (size_t id = 0; id < spec.tokens.size(); ++id) {
    if (typed && spec.token_types[id] != TokenType::kNormal &&
        spec.token_types[id] != TokenType::kUndefined) {
      continue;  // control, byte and user-defined tokens are never the product of a merge
    }
    const std::string_view text = spec.tokens[id];
    for (size_t cut = 1; cut < text.size(); ++cut) {
      if ((static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) continue;  // inside a character
      const auto a = find(text.substr(0, cut)), b = find(text.substr(cut));
      if (a && b) merges_.emplace(pair_key(*a, *b), Merge{rank_of[id], static_cast<int32_t>(id)});
    }
  }
}

void BpeModel::merge(const std::vector<int32_t>& symbols, std::vector<int32_t>& out) const {
  const int32_t n = static_cast<int32_t>(symbols.size());
  if (n <= 1) {
    out.insert(out.end(), symbols.begin(), symbols.end());
    return;
  }
  struct Symbol {
    int32_t id, prev, next;
  };
  struct Candidate {
    int32_t rank, pos, result;
    // Heap order: lowest rank first, then leftmost.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  // Per-thread scratch: words are short and many, so reuse instead of allocating per word.
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Candidate> heap;
  sym.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) sym[i] = {symbols[i], i - 1, i + 1 < n ? i + 1 : -1};
  const auto consider = [&](int32_t left) {
    if (left < 0 || sym[left].next < 0) return;
    if (const Merge* m = find_merge(sym[left].id, sym[sym[left].next].id)) {
      heap.push_back({m->rank, left, m->result});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[top.pos];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or nothing to its right any more
    const Merge* m = find_merge(left.id, sym[left.next].id);
    if (!m || m->result != top.result) continue;  // stale: a neighbour changed since it was queued
    Symbol& right = sym[left.next];
    left.id = top.result;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    right.id = -1;
    consider(left.prev);
    consider(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace shardlm
