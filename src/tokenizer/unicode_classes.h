// Unicode classes as Hugging Face tokenizers' engines see them, where PCRE2 sees them otherwise.
// HF matches its pre-tokenizer regexes with Oniguruma (a newer Unicode than Debian's PCRE2, and a
// \s without U+180E) and its Digits pre-tokenizer with Rust's char::is_numeric. The pre-tokenizer
// keeps PCRE2 and its JIT: before matching, every code point listed here is replaced by a stand-in
// of the same UTF-8 length that PCRE2 puts in the HF class, so the pieces (cut at the same byte
// offsets) are HF's. Tables: scripts/gen_unicode_pretok_refs.py.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace shardlm {

namespace unicode_classes {
// The classes the supported patterns tell apart: \s, \p{L}, \p{N}, \p{P}, \p{S}, \p{M}
// (DeepSeek-V3's words), and anything else. Disjoint: no white space is a letter, number,
// punctuation, symbol or mark.
enum class CharClass : uint8_t { kSpace, kLetter, kNumber, kPunct, kSymbol, kMark, kOther };
struct ClassRange {
  uint32_t first, last;  // inclusive
  CharClass cls;
};
// Sorted, disjoint, all above U+007F (ASCII is the same everywhere).
extern const ClassRange kRegexOverrides[];  // Oniguruma's \s, \p{L}, \p{N}, \p{P}, \p{S}, \p{M}
extern const size_t kRegexOverridesCount;
extern const ClassRange kDigitsOverrides[];  // Rust's char::is_numeric as \p{N}
extern const size_t kDigitsOverridesCount;
}  // namespace unicode_classes

class ClassOverrides {
 public:
  // For HF Split / ByteLevel regexes.
  static const ClassOverrides& oniguruma();
  // For HF's Digits pre-tokenizer, which shardlm spells \p{N} or \p{N}++.
  static const ClassOverrides& rust_numeric();
  // For patterns that name no class, only code points: nothing is replaced.
  static const ClassOverrides& none();

  // When text (valid UTF-8) holds a listed code point, writes to out a copy of it with every such
  // code point replaced by its stand-in and returns true; otherwise returns false and leaves out
  // alone.
  bool substitute(std::string_view text, std::string& out) const;

 private:
  explicit ClassOverrides(std::span<const unicode_classes::ClassRange> ranges);
  const unicode_classes::ClassRange* find(uint32_t cp) const;

  std::span<const unicode_classes::ClassRange> ranges_;
  uint32_t first_ = 0;  // the lowest listed code point: below it, nothing to look up
};

}  // namespace shardlm
