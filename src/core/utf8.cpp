// UTF-8 validation and repair, and the GPT-2 byte-level alphabet.
#include "core/utf8.h"

namespace shardlm::utf8 {

size_t valid_sequence_at(std::string_view s, size_t pos, bool* truncated) {
  if (truncated) *truncated = false;
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t lead = byte(pos);
  if (lead < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) lo = 0xA0;  // overlong
    if (lead == 0xED) hi = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) lo = 0x90;  // overlong
    if (lead == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  for (size_t i = 1; i < len; ++i) {
    if (pos + i >= s.size()) {
      if (truncated) *truncated = true;
      return 0;
    }
    const uint8_t c = byte(pos + i);
    const uint8_t min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
    if (c < min || c > max) return 0;
  }
  return len;
}

bool is_valid(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = valid_sequence_at(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

// Length of the maximal invalid subpart at pos: the lead byte plus the continuation bytes that were
// still acceptable before the sequence broke off.
static size_t invalid_subpart_length(std::string_view s, size_t pos) {
  const uint8_t lead = static_cast<uint8_t>(s[pos]);
  size_t expected = 1;
  uint8_t lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    expected = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    expected = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    expected = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  }
  size_t n = 1;
  while (n < expected && pos + n < s.size()) {
    const uint8_t c = static_cast<uint8_t>(s[pos + n]);
    const uint8_t min = n == 1 ? lo : 0x80, max = n == 1 ? hi : 0xBF;
    if (c < min || c > max) break;
    ++n;
  }
  return n;
}

std::string repair(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = valid_sequence_at(s, pos);
    if (n > 0) {
      out.append(s.substr(pos, n));
      pos += n;
    } else {
      out.append(kReplacement);
      pos += invalid_subpart_length(s, pos);
    }
  }
  return out;
}

void append_codepoint(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t decode_at(std::string_view s, size_t& pos) {
  const uint8_t lead = static_cast<uint8_t>(s[pos]);
  const size_t len = sequence_length(lead);
  uint32_t cp = len == 1   ? lead
                : len == 2 ? (lead & 0x1F)
                : len == 3 ? (lead & 0x0F)
                           : (lead & 0x07);
  for (size_t i = 1; i < len; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + i]) & 0x3F);
  pos += len;
  return cp;
}

static ByteLevelAlphabet build_alphabet() {
  ByteLevelAlphabet a;
  a.codepoint_to_byte.fill(-1);
  // Printable Latin-1 bytes stand for themselves; the others take code points 256, 257, ... in
  // order.
  const auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const int cp = printable(b) ? b : next++;
    append_codepoint(a.byte_to_text[b], static_cast<uint32_t>(cp));
    a.codepoint_to_byte[cp] = static_cast<int16_t>(b);
  }
  return a;
}

const ByteLevelAlphabet& byte_level_alphabet() {
  static const ByteLevelAlphabet alphabet = build_alphabet();
  return alphabet;
}

bool byte_level_decode(std::string_view text, std::string& out) {
  if (!is_valid(text)) return false;
  const auto& a = byte_level_alphabet();
  std::string bytes;
  bytes.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const uint32_t cp = decode_at(text, pos);
    if (cp >= a.codepoint_to_byte.size() || a.codepoint_to_byte[cp] < 0) return false;
    bytes += static_cast<char>(a.codepoint_to_byte[cp]);
  }
  out += bytes;
  return true;
}

}  // namespace shardlm::utf8
