// Python's int() and float() text parsing, checked case by case against CPython: "1_000" and
// " 12 " are ints, "0x1f" needs base 16 or 0, "1.5" and "1e3" are floats only, "0x1p3" is neither.
#include "template/number_parse.h"

#include <cctype>
#include <cstdlib>
#include <string>

#include "template/string_ops.h"

namespace shardlm::tmpl {

namespace {

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

// Consumes a "0x"/"0o"/"0b" prefix matching base (or choosing it, for base 0).
void take_prefix(std::string_view& s, int& base) {
  if (s.size() < 2 || s[0] != '0') return;
  char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
  int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
  if (prefixed == 0 || (base != 0 && base != prefixed)) return;
  base = prefixed;
  s.remove_prefix(2);
  if (!s.empty() && s[0] == '_') s.remove_prefix(1);  // "0x_1f" is valid
}

// Digits with single underscores between them; "" and stray underscores are invalid.
bool strip_underscores(std::string_view s, std::string& digits) {
  if (s.empty() || s.front() == '_' || s.back() == '_') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (s[i + 1] == '_') return false;
      continue;
    }
    digits += s[i];
  }
  return true;
}

}  // namespace

IntParse parse_python_int(std::string_view text, int base, int64_t& out) {
  std::string stripped = py_strip(text, nullptr, true, true);
  std::string_view s = stripped;
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  bool had_prefix = s.size() >= 2 && s[0] == '0' && std::isalpha(static_cast<unsigned char>(s[1]));
  take_prefix(s, base);
  std::string digits;
  if (!strip_underscores(s, digits)) return IntParse::Invalid;
  if (base == 0) {
    // Base 0 without a prefix is decimal, where a leading zero is only allowed for zero itself.
    if (had_prefix) return IntParse::Invalid;
    if (digits.size() > 1 && digits[0] == '0' && digits.find_first_not_of('0') != std::string::npos)
      return IntParse::Invalid;
    base = 10;
  }
  if (base < 2 || base > 36) return IntParse::Invalid;
  unsigned __int128 value = 0;
  bool too_big = false;
  for (char c : digits) {
    int d = digit_value(c);
    if (d >= base) return IntParse::Invalid;
    value = value * static_cast<unsigned>(base) + static_cast<unsigned>(d);
    if (value > (static_cast<unsigned __int128>(1) << 64)) too_big = true, value = 0;
  }
  unsigned __int128 limit = static_cast<unsigned __int128>(INT64_MAX) + (negative ? 1 : 0);
  if (too_big || value > limit) return IntParse::TooBig;
  out =
      negative ? static_cast<int64_t>(-static_cast<__int128>(value)) : static_cast<int64_t>(value);
  return IntParse::Ok;
}

bool parse_python_float(std::string_view text, double& out) {
  std::string stripped = py_strip(text, nullptr, true, true);
  std::string_view s = stripped;
  std::string body(s);
  size_t sign = !body.empty() && (body[0] == '+' || body[0] == '-') ? 1 : 0;
  std::string word = body.substr(sign);
  for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (word == "inf" || word == "infinity" || word == "nan") {
    out = std::strtod(body.c_str(), nullptr);
    return true;
  }
  // Decimal digits, one optional point, an optional exponent; underscores only between digits.
  std::string clean;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '_') {
      bool between = i > 0 && i + 1 < body.size() &&
                     std::isdigit(static_cast<unsigned char>(body[i - 1])) &&
                     std::isdigit(static_cast<unsigned char>(body[i + 1]));
      if (!between) return false;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != 'E' &&
        c != '+' && c != '-')
      return false;
    clean += c;
  }
  if (clean.empty()) return false;
  char* end = nullptr;
  out = std::strtod(clean.c_str(), &end);
  return end == clean.c_str() + clean.size() && end != clean.c_str();
}

}  // namespace shardlm::tmpl
