// Stand-ins that make PCRE2 see HF's Unicode classes (see unicode_classes.h). A stand-in has the
// UTF-8 length of the code point it replaces, so piece offsets carry over to the original text; it
// is an old, stable character of the wanted class in every PCRE2 and folds to no ASCII letter, so
// case-insensitive contractions never match it.
#include "tokenizer/unicode_classes.h"

#include <algorithm>

#include "core/utf8.h"

namespace shardlm {

namespace {

using unicode_classes::CharClass;
using unicode_classes::ClassRange;

// [UTF-8 length - 2][class]; U+0000 where no character of that length is in the class (there is
// no four-byte white space, and none is listed). Each row in CharClass order: space, letter,
// number, punctuation, symbol, mark, other (a format character: no class any pattern names).
constexpr uint32_t kStandIns[3][7] = {
    // NBSP, feminine ordinal, superscript two, inverted !, copyright, combining grave, soft hyphen
    {0x00A0, 0x00AA, 0x00B2, 0x00A1, 0x00A9, 0x0300, 0x00AD},
    // ideographic space, CJK one, fullwidth 0, hyphen, left arrow, combining left harpoon, ZWSP
    {0x3000, 0x4E00, 0xFF10, 0x2010, 0x2190, 0x20D0, 0x200B},
    // -, CJK Ext. B, math bold 0, Aegean word separator, grinning face, Phaistos combining
    // stroke, language tag
    {0x0000, 0x20000, 0x1D7CE, 0x10100, 0x1F600, 0x101FD, 0xE0001},
};

uint32_t stand_in(CharClass cls, size_t length) {
  return kStandIns[length - 2][static_cast<size_t>(cls)];
}

}  // namespace

ClassOverrides::ClassOverrides(std::span<const ClassRange> ranges)
    : ranges_(ranges), first_(ranges.empty() ? 0x110000 : ranges.front().first) {}

const ClassOverrides& ClassOverrides::oniguruma() {
  static const ClassOverrides overrides(
      {unicode_classes::kRegexOverrides, unicode_classes::kRegexOverridesCount});
  return overrides;
}

const ClassOverrides& ClassOverrides::rust_numeric() {
  static const ClassOverrides overrides(
      {unicode_classes::kDigitsOverrides, unicode_classes::kDigitsOverridesCount});
  return overrides;
}

const ClassOverrides& ClassOverrides::none() {
  static const ClassOverrides overrides(std::span<const ClassRange>{});
  return overrides;
}

const ClassRange* ClassOverrides::find(uint32_t cp) const {
  if (cp < first_) return nullptr;
  const auto it = std::upper_bound(ranges_.begin(), ranges_.end(), cp,
                                   [](uint32_t c, const ClassRange& r) { return c < r.first; });
  if (it == ranges_.begin() || cp > std::prev(it)->last) return nullptr;
  return &*std::prev(it);
}

bool ClassOverrides::substitute(std::string_view text, std::string& out) const {
  bool copied = false;
  for (size_t pos = 0; pos < text.size();) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t start = pos;
    const ClassRange* range = find(utf8::decode_at(text, pos));
    if (!range) continue;
    if (!copied) out.assign(text);
    copied = true;
    std::string replacement;
    utf8::append_codepoint(replacement, stand_in(range->cls, pos - start));
    out.replace(start, pos - start, replacement);
  }
  return copied;
}

}  // namespace shardlm
