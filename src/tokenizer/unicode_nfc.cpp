// NFC per UAX #15: full canonical decomposition (Hangul algorithmically), canonical ordering of
// combining marks, then canonical composition of unblocked pairs.
#include "tokenizer/unicode_nfc.h"

#include <algorithm>
#include <vector>

#include "core/utf8.h"

namespace shardlm {
namespace {

using namespace nfc_tables;

// Hangul syllable arithmetic (Unicode chapter 3.12).
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

const Decomposition* find_decomposition(uint32_t cp) {
  const auto* end = kDecompositions + kDecompositionCount;
  const auto* it =
      std::lower_bound(kDecompositions, end, cp,
                       [](const Decomposition& d, uint32_t c) { return d.code_point < c; });
  return it != end && it->code_point == cp ? it : nullptr;
}

uint32_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCombiningClasses + kCombiningClassCount;
  const auto* it =
      std::lower_bound(kCombiningClasses, end, cp,
                       [](const CombiningClass& c, uint32_t x) { return c.code_point < x; });
  return it != end && it->code_point == cp ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* d = cp < 0xC0 ? nullptr : find_decomposition(cp);
  if (!d) {
    out.push_back(cp);
    return;
  }
  decompose(d->first, out);
  if (d->second) decompose(d->second, out);
}

// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto* end = kCompositions + kCompositionCount;
  const auto* it = std::lower_bound(kCompositions, end, std::pair(a, b),
                                    [](const Composition& c, std::pair<uint32_t, uint32_t> key) {
                                      return std::pair(c.first, c.second) < key;
                                    });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

// Stable sort of every run of non-starters by combining class.
void reorder(std::vector<uint32_t>& cps) {
  for (size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j, [](uint32_t x, uint32_t y) {
      return combining_class(x) < combining_class(y);
    });
    i = j;
  }
}

// Composes in place. Between the last starter and a mark there are only marks in canonical
// order, so the mark is unblocked when it is adjacent or its class exceeds the previous one's.
void recompose(std::vector<uint32_t>& cps) {
  std::vector<uint32_t> out;
  out.reserve(cps.size());
  ptrdiff_t starter = -1;
  uint32_t prev_class = 0;
  for (const uint32_t cp : cps) {
    const uint32_t cc = combining_class(cp);
    if (starter >= 0) {
      const bool adjacent = static_cast<size_t>(starter) + 1 == out.size();
      if (adjacent || (prev_class != 0 && prev_class < cc)) {
        if (const uint32_t composite = compose(out[starter], cp)) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0) starter = static_cast<ptrdiff_t>(out.size());
    out.push_back(cp);
    prev_class = cc;
  }
  cps.swap(out);
}

}  // namespace

bool nfc_quick_check(std::string_view text) {
  // U+0300 is 0xCC 0x80 in UTF-8: any lead byte at or above 0xCC starts a code point >= U+0300.
  for (const char c : text) {
    if (static_cast<uint8_t>(c) >= 0xCC) return false;
  }
  return true;
}

std::string nfc_normalize(std::string_view text) {
  if (nfc_quick_check(text)) return std::string(text);
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) decompose(utf8::decode_at(text, pos), cps);
  reorder(cps);
  recompose(cps);
  std::string out;
  out.reserve(text.size());
  for (const uint32_t cp : cps) utf8::append_codepoint(out, cp);
  return out;
}

}  // namespace shardlm
