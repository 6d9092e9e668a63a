// Shared BPE tokenizer plumbing: input repair, added-token splitting, BOS/EOS.
#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/unicode_nfc.h"
#include "core/utf8.h"

namespace shardlm {

BpeTokenizerBase::BpeTokenizerBase(TokenizerSpec spec)
    : spec_(std::move(spec)), model_(spec_), added_(spec_) {}

std::vector<int32_t> BpeTokenizerBase::encode(std::string_view text, bool add_special,
                                              bool parse_special) const {
  // Validate once so the regexes can skip their own UTF-8 checks; invalid bytes become U+FFFD as
  // they would on their way into a Python/Rust string.
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::repair(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special && spec_.add_bos && spec_.bos_id) ids.push_back(*spec_.bos_id);
  std::vector<TextSegment> segments;
  added_.split(text, parse_special, segments);
  for (const auto& segment : segments) {
    if (segment.token >= 0) {
      ids.push_back(segment.token);
    } else if (spec_.normalize_nfc && !nfc_quick_check(segment.text)) {
      // HF normalizes each stretch between added tokens, before pre-tokenizing it.
      encode_text(nfc_normalize(segment.text), segment.offset == 0, ids);
    } else {
      encode_text(segment.text, segment.offset == 0, ids);
    }
  }
  if (add_special && spec_.add_eos && spec_.eos_id) ids.push_back(*spec_.eos_id);
  return ids;
}

void BpeTokenizerBase::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    fail("token id {} is out of range: the vocabulary has {} tokens", id, vocab_size());
  }
}

std::string BpeTokenizerBase::token_bytes(int32_t id, bool render_special) const {
  check_id(id);
  if (!render_special && is_special(id)) return {};
  return bytes_[id];
}

bool BpeTokenizerBase::is_eos(int32_t id) const {
  return (spec_.eos_id && id == *spec_.eos_id) ||
         std::find(spec_.extra_eos_ids.begin(), spec_.extra_eos_ids.end(), id) !=
             spec_.extra_eos_ids.end();
}

bool BpeTokenizerBase::is_special(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= spec_.token_types.size()) return false;
  const TokenType type = spec_.token_types[id];
  return type == TokenType::kControl || type == TokenType::kUnknown;
}

}  // namespace shardlm
