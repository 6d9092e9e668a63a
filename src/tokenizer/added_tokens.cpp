// Literal special/added token matching.
#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace shardlm {

AddedTokenMatcher::AddedTokenMatcher(const TokenizerSpec& spec) {
  if (spec.token_types.size() != spec.tokens.size()) return;
  for (size_t id = 0; id < spec.tokens.size(); ++id) {
    const TokenType type = spec.token_types[id];
    const bool special = type == TokenType::kControl || type == TokenType::kUnknown;
    if (!special && type != TokenType::kUserDefined) continue;
    const std::string_view text = spec.tokens[id];
    if (text.empty()) continue;
    if (!by_text_.emplace(text, Entry{static_cast<int32_t>(id), special}).second) continue;
    first_[static_cast<uint8_t>(text[0])] = true;
    if (std::find(lengths_.begin(), lengths_.end(), text.size()) == lengths_.end()) {
      lengths_.push_back(text.size());
    }
  }
  std::sort(lengths_.rbegin(), lengths_.rend());
}

void AddedTokenMatcher::split(std::string_view text, bool parse_special,
                              std::vector<TextSegment>& out) const {
  size_t last = 0;
  if (!by_text_.empty()) {
    for (size_t pos = 0; pos < text.size(); ++pos) {
      if (!first_[static_cast<uint8_t>(text[pos])]) continue;
      for (const size_t len : lengths_) {
        if (len > text.size() - pos) continue;
        const auto it = by_text_.find(text.substr(pos, len));
        if (it == by_text_.end() || (it->second.special && !parse_special)) continue;
        if (pos > last) out.push_back({text.substr(last, pos - last), -1, last});
        out.push_back({text.substr(pos, len), it->second.id, pos});
        last = pos + len;
        pos = last - 1;
        break;
      }
    }
  }
  if (last < text.size()) out.push_back({text.substr(last), -1, last});
}

}  // namespace shardlm
