// Vocabulary and merge rules shared by both BPE flavours, and the merge loop itself. Merging
// follows Hugging Face's BPE exactly: repeatedly apply the lowest-ranked adjacent pair, leftmost
// first.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace shardlm {

class BpeModel {
 public:
  // Ranks come from spec.merges when it has any, otherwise from spec.scores: every token that is
  // the concatenation of two tokens becomes a merge ranked by its score, highest first (the
  // SentencePiece rule llama.cpp applies to GGUF "llama" vocabularies). Throws Error on a merge
  // naming an unknown token.
  explicit BpeModel(const TokenizerSpec& spec);

  std::optional<int32_t> find(std::string_view text) const {
    const auto it = token_to_id_.find(text);
    if (it == token_to_id_.end()) return std::nullopt;
    return it->second;
  }
  int32_t size() const { return static_cast<int32_t>(tokens_->size()); }

  // Merges a word given as its initial symbols (token ids), appending the result to out.
  void merge(const std::vector<int32_t>& symbols, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* find_merge(int32_t a, int32_t b) const {
    const auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  }
  void add_ranked_merges(const TokenizerSpec& spec);
  void add_scored_merges(const TokenizerSpec& spec);

  const std::vector<std::string>* tokens_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id_;
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace shardlm
