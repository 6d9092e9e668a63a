// Splits special and added tokens written literally in the text (e.g. "<|im_start|>") out of it
// before BPE sees it: longest match at the leftmost position, as HF's AddedVocabulary does.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace shardlm {

struct TextSegment {
  std::string_view text;  // raw text when token < 0
  int32_t token = -1;     // an added token's id otherwise
  size_t offset = 0;      // byte offset of the segment in the whole text
};

class AddedTokenMatcher {
 public:
  // Control, unknown and user-defined tokens of the spec take part. Control and unknown tokens are
  // "special": parse_special=false leaves them as plain text; user-defined ones always split.
  explicit AddedTokenMatcher(const TokenizerSpec& spec);

  void split(std::string_view text, bool parse_special, std::vector<TextSegment>& out) const;

 private:
  struct Entry {
    int32_t id;
    bool special;
  };
  std::unordered_map<std::string_view, Entry> by_text_;
  std::vector<size_t> lengths_;    // distinct token lengths, longest first
  std::array<bool, 256> first_{};  // bytes some token starts with
};

}  // namespace shardlm
