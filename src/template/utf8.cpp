// UTF-8 decoding and encoding for code-point-indexed string operations.
#include "template/utf8.h"

#include "core/utf8.h"

namespace shardlm::tmpl {

static int sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

static bool decode_one(std::string_view s, size_t& pos, char32_t& cp) {
  unsigned char lead = static_cast<unsigned char>(s[pos]);
  int len = sequence_length(lead);
  if (len == 0 || pos + len > s.size()) return false;
  if (len == 1) {
    cp = lead;
    ++pos;
    return true;
  }
  char32_t value = lead & (0x7F >> len);
  for (int i = 1; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(s[pos + i]);
    if ((c & 0xC0) != 0x80) return false;
    value = (value << 6) | (c & 0x3F);
  }
  cp = value;
  pos += len;
  return true;
}

std::vector<char32_t> utf8_decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    char32_t cp;
    if (decode_one(s, pos, cp)) {
      out.push_back(cp);
    } else {
      out.push_back(0xFFFD);
      ++pos;
    }
  }
  return out;
}

void utf8_append(std::string& out, char32_t cp) {
  utf8::append_codepoint(out, static_cast<uint32_t>(cp));
}

std::string utf8_encode(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end && i < cps.size(); ++i) utf8_append(out, cps[i]);
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

char32_t utf8_next(std::string_view s, size_t& pos) {
  char32_t cp;
  if (decode_one(s, pos, cp)) return cp;
  ++pos;
  return 0xFFFD;
}

char32_t utf8_prev(std::string_view s, size_t& pos) {
  size_t end = pos;
  size_t start = end - 1;
  while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
    --start;
  size_t probe = start;
  char32_t cp;
  if (decode_one(s, probe, cp) && probe == end) {
    pos = start;
    return cp;
  }
  pos = end - 1;
  return 0xFFFD;
}

}  // namespace shardlm::tmpl
