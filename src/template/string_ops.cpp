// Python str semantics for strip, split, replace and case mapping. Case mapping covers ASCII only;
// other characters pass through unchanged.
#include "template/string_ops.h"

#include <algorithm>
#include <cctype>

#include "template/template_error.h"
#include "template/utf8.h"

namespace shardlm::tmpl {

// Python's str.isspace(): the characters with Unicode bidirectional type WS, B or S, or category
// Zs.
bool is_py_space(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Byte offset just past the leading code points of s[b, e) that match `pred`.
template <typename Pred>
static size_t skip_forward(std::string_view s, size_t b, size_t e, Pred pred) {
  while (b < e) {
    size_t next = b;
    if (!pred(utf8_next(s, next)) || next > e) break;
    b = next;
  }
  return b;
}

// Byte offset of the first of the trailing code points of s[b, e) that match `pred`.
template <typename Pred>
static size_t skip_backward(std::string_view s, size_t b, size_t e, Pred pred) {
  while (e > b) {
    size_t prev = e;
    if (!pred(utf8_prev(s, prev)) || prev < b) break;
    e = prev;
  }
  return e;
}

static bool is_space_cp(char32_t c) {
  return is_py_space(c);
}
static bool not_space_cp(char32_t c) {
  return !is_py_space(c);
}

std::string py_strip(std::string_view s, const std::string* chars, bool left, bool right) {
  std::vector<char32_t> set = chars ? utf8_decode(*chars) : std::vector<char32_t>{};
  auto strip_cp = [&](char32_t c) {
    return chars ? std::find(set.begin(), set.end(), c) != set.end() : is_py_space(c);
  };
  size_t b = 0, e = s.size();
  if (left) b = skip_forward(s, b, e, strip_cp);
  if (right) e = skip_backward(s, b, e, strip_cp);
  return std::string(s.substr(b, e - b));
}

static std::vector<std::string> split_whitespace(std::string_view s, int64_t maxsplit) {
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    i = skip_forward(s, i, s.size(), is_space_cp);
    if (i >= s.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
      out.emplace_back(s.substr(i));  // Python keeps the rest as is, trailing spaces included
      break;
    }
    size_t j = skip_forward(s, i, s.size(), not_space_cp);
    out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

static std::vector<std::string> rsplit_whitespace(std::string_view s, int64_t maxsplit) {
  std::vector<std::string> out;
  size_t e = s.size();
  while (true) {
    e = skip_backward(s, 0, e, is_space_cp);
    if (e == 0) break;
    if (static_cast<int64_t>(out.size()) == maxsplit) {
      out.emplace_back(s.substr(0, e));  // Python keeps the rest as is, leading spaces included
      break;
    }
    size_t b = skip_backward(s, 0, e, not_space_cp);
    out.emplace_back(s.substr(b, e - b));
    e = b;
  }
  return {out.rbegin(), out.rend()};
}

std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit) {
  if (!sep) return split_whitespace(s, maxsplit);
  if (sep->empty()) eval_fail("empty separator");
  std::vector<std::string> out;
  size_t start = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    size_t pos = s.find(*sep, start);
    if (pos == std::string_view::npos) break;
    out.emplace_back(s.substr(start, pos - start));
    start = pos + sep->size();
  }
  out.emplace_back(s.substr(start));
  return out;
}

std::vector<std::string> py_rsplit(std::string_view s, const std::string* sep, int64_t maxsplit) {
  if (maxsplit < 0) return py_split(s, sep, maxsplit);
  if (!sep) return rsplit_whitespace(s, maxsplit);
  if (sep->empty()) eval_fail("empty separator");
  std::vector<std::string> out;
  size_t end = s.size();
  while (static_cast<int64_t>(out.size()) < maxsplit) {
    if (end < sep->size()) break;
    size_t pos = s.rfind(*sep, end - sep->size());
    if (pos == std::string_view::npos) break;
    out.emplace_back(s.substr(pos + sep->size(), end - pos - sep->size()));
    end = pos;
  }
  out.emplace_back(s.substr(0, end));
  return {out.rbegin(), out.rend()};
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view with,
                       int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts `with` before every character and at the end.
    int64_t n = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
      bool boundary = i == s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
      if (boundary && (count < 0 || n < count)) {
        out += with;
        ++n;
      }
      if (i < s.size()) out += s[i];
    }
    return out;
  }
  size_t start = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t pos = s.find(old, start);
    if (pos == std::string_view::npos) break;
    out.append(s.substr(start, pos - start));
    out.append(with);
    start = pos + old.size();
    ++n;
  }
  out.append(s.substr(start));
  return out;
}

std::string py_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string py_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out = py_lower(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

// Whether a code point is a cased letter: ASCII letters, and (approximately) the Latin, Greek and
// Cyrillic letter blocks; CJK, symbols and spaces are uncased.
static bool is_cased(char32_t c) {
  if (c < 0x80) return std::isalpha(static_cast<int>(c)) != 0;
  return (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0x370 && c <= 0x52F);
}

// Python str.title(): a cased letter after an uncased character starts a word. Only ASCII letters
// change case.
std::string py_title(std::string_view s) {
  std::string out;
  bool prev_cased = false;
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    char32_t c = utf8_next(s, i);
    if (c < 0x80 && std::isalpha(static_cast<int>(c))) {
      out += static_cast<char>(prev_cased ? std::tolower(static_cast<int>(c))
                                          : std::toupper(static_cast<int>(c)));
    } else {
      out.append(s.substr(start, i - start));
    }
    prev_cased = is_cased(c);
  }
  return out;
}

// Python's line boundaries: \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, U+2028, U+2029.
static bool is_line_break(char32_t c) {
  return (c >= 0x0A && c <= 0x0D) || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
         c == 0x2029;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> out;
  size_t start = 0, i = 0;
  while (i < s.size()) {
    size_t end = i;
    char32_t c = utf8_next(s, i);
    if (!is_line_break(c)) continue;
    if (c == '\r' && i < s.size() && s[i] == '\n') ++i;
    out.emplace_back(s.substr(start, (keepends ? i : end) - start));
    start = i;
  }
  if (start < s.size()) out.emplace_back(s.substr(start));
  return out;
}

}  // namespace shardlm::tmpl
