// The template lexer. Text is scanned up to the next "{{", "{%" or "{#"; code inside a tag is split
// into names, literals and operators until the matching close delimiter at bracket depth zero.
#include "template/lexer.h"

#include <algorithm>
#include <cctype>

#include "template/utf8.h"

namespace shardlm::tmpl {

LineIndex::LineIndex(std::string_view source) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\n') line_starts_.push_back(i + 1);
  }
}

SourceLoc LineIndex::locate(size_t offset) const {
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  size_t line = static_cast<size_t>(it - line_starts_.begin());
  return SourceLoc{static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src), lines_(src) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      if (!scan_text()) break;
    }
    tokens_.push_back(Token{TokenType::End, "", src_.size()});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(const std::string& message, size_t offset) {
    throw TemplateError(message, lines_.locate(offset));
  }

  // Scans text up to the next tag and the tag itself. Returns false at the end of the source.
  bool scan_text() {
    size_t start = find_tag(pos_);
    std::string text(src_.substr(pos_, start - pos_));
    if (start == src_.size()) {
      emit_text(std::move(text), pos_);
      pos_ = start;
      return false;
    }
    char kind = src_[start + 1];
    char marker = start + 2 < src_.size() ? src_[start + 2] : '\0';
    if (marker == '-') {
      while (!text.empty() && is_space(text.back())) text.pop_back();
    } else if (marker != '+' && kind != '{') {
      lstrip_line(text);
    }
    emit_text(std::move(text), pos_);
    size_t body = start + 2 + ((marker == '-' || marker == '+') ? 1 : 0);
    if (kind == '#') return scan_comment(start, body);
    if (kind == '%' && is_raw_block(body)) return scan_raw(start, body);
    scan_code(kind, start, body);
    return true;
  }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return src_.size();
  }

  // lstrip_blocks: drop spaces and tabs between the start of the line and a block or comment tag.
  void lstrip_line(std::string& text) {
    size_t nl = text.rfind('\n');
    size_t line_pos = nl == std::string::npos ? 0 : nl + 1;
    if (nl == std::string::npos && !line_starting_) return;
    for (size_t i = line_pos; i < text.size(); ++i) {
      if (!is_space(text[i])) return;
    }
    text.resize(line_pos);
  }

  void emit_text(std::string text, size_t offset) {
    if (!text.empty()) tokens_.push_back(Token{TokenType::Text, std::move(text), offset});
  }

  // After a close delimiter: "-" strips all following whitespace, trim_blocks one newline.
  void after_close(char marker, bool trim_newline) {
    size_t begin = pos_;
    if (marker == '-') {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
    } else if (marker != '+' && trim_newline && pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
    }
    line_starting_ = pos_ > begin && src_[pos_ - 1] == '\n';
  }

  bool scan_comment(size_t start, size_t body) {
    size_t end = src_.find("#}", body);
    if (end == std::string_view::npos) error("unterminated comment: missing '#}'", start);
    char marker = end > body ? src_[end - 1] : '\0';
    pos_ = end + 2;
    after_close(marker, true);
    return true;
  }

  bool is_raw_block(size_t body) const {
    size_t p = body;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0 ||
           src_.compare(p, 3, "+%}") == 0;
  }

  // Finds "{% endraw %}" (with optional markers); returns its start or npos.
  size_t find_endraw(size_t from, size_t& after) const {
    for (size_t p = src_.find("{%", from); p != std::string_view::npos;
         p = src_.find("{%", p + 2)) {
      size_t q = p + 2;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
      if (src_.compare(q, 2, "%}") != 0) continue;
      after = q + 2;
      return p;
    }
    return std::string_view::npos;
  }

  bool scan_raw(size_t start, size_t body) {
    size_t open_end = src_.find("%}", body);
    char open_marker = src_[open_end - 1];
    pos_ = open_end + 2;
    after_close(open_marker, true);
    size_t after = 0;
    size_t close = find_endraw(pos_, after);
    if (close == std::string_view::npos)
      error("unterminated raw block: missing '{% endraw %}'", start);
    std::string text(src_.substr(pos_, close - pos_));
    if (src_[close + 2] == '-') {
      while (!text.empty() && is_space(text.back())) text.pop_back();
    } else if (src_[close + 2] != '+') {
      lstrip_line(text);
    }
    emit_text(std::move(text), pos_);
    pos_ = after;
    after_close(src_[after - 3], true);
    return true;
  }

  void scan_code(char kind, size_t start, size_t body) {
    bool block = kind == '%';
    tokens_.push_back(Token{block ? TokenType::BlockBegin : TokenType::VarBegin, "", start});
    pos_ = body;
    int depth = 0;
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) ++pos_;
      if (pos_ >= src_.size())
        error(block ? "unterminated block: missing '%}'" : "unterminated expression: missing '}}'",
              start);
      if (depth == 0 && try_close(block)) return;
      scan_code_token(depth);
    }
  }

  bool try_close(bool block) {
    std::string_view close = block ? "%}" : "}}";
    char marker = '\0';
    size_t p = pos_;
    if ((src_[p] == '-' || (block && src_[p] == '+')) && src_.compare(p + 1, 2, close) == 0) {
      marker = src_[p];
      ++p;
    }
    if (src_.compare(p, 2, close) != 0) return false;
    tokens_.push_back(Token{block ? TokenType::BlockEnd : TokenType::VarEnd, "", pos_});
    pos_ = p + 2;
    after_close(marker, block);
    return true;
  }

  void scan_code_token(int& depth) {
    char c = src_[pos_];
    if (is_name_start(c)) return scan_name();
    if (is_digit(c)) return scan_number();
    if (c == '\'' || c == '"') return scan_string();
    scan_operator(depth);
  }

  void scan_name() {
    size_t begin = pos_;
    while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
    tokens_.push_back(Token{TokenType::Name, std::string(src_.substr(begin, pos_ - begin)), begin});
  }

  void scan_digits(std::string& out) {
    while (pos_ < src_.size() &&
           (is_digit(src_[pos_]) ||
            (src_[pos_] == '_' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1])))) {
      if (src_[pos_] != '_') out += src_[pos_];
      ++pos_;
    }
  }

  // Numbers as jinja2 lexes them: a float (digits with "." and/or an exponent) first; otherwise an
  // integer, where a leading 0 starts 0b/0o/0x or a run of zeros ("05" is two tokens, an error).
  void scan_number() {
    size_t begin = pos_;
    std::string text;
    scan_digits(text);
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      is_float = true;
      text += src_[pos_++];
      scan_digits(text);
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && is_digit(src_[p])) {
        is_float = true;
        text += 'e';
        text.append(src_.substr(pos_ + 1, p - pos_ - 1));
        pos_ = p;
        scan_digits(text);
      }
    }
    if (is_float) {
      tokens_.push_back(Token{TokenType::Float, text, begin});
      return;
    }
    pos_ = begin;
    if (src_[pos_] == '0') return scan_zero_integer(begin);
    text.clear();
    scan_digits(text);
    tokens_.push_back(Token{TokenType::Integer, text, begin});
  }

  void scan_zero_integer(size_t begin) {
    char prefix = pos_ + 1 < src_.size() ? static_cast<char>(std::tolower(src_[pos_ + 1])) : '\0';
    int base = prefix == 'x' ? 16 : prefix == 'o' ? 8 : prefix == 'b' ? 2 : 10;
    auto valid = [base](char c) {
      int d = is_digit(c)                                    ? c - '0'
              : std::isxdigit(static_cast<unsigned char>(c)) ? std::tolower(c) - 'a' + 10
                                                             : 99;
      return base == 10 ? c == '0' : d < base;
    };
    size_t p = pos_ + (base == 10 ? 1 : 2);
    std::string digits;
    while (p < src_.size()) {
      if (src_[p] == '_' && p + 1 < src_.size() && valid(src_[p + 1])) ++p;
      if (!valid(src_[p])) break;
      digits += src_[p++];
    }
    if (base != 10 && digits.empty()) p = pos_ + 1;  // a lone "0" followed by a name
    unsigned long long value = 0;
    for (char c : digits) {
      int d = is_digit(c) ? c - '0' : std::tolower(c) - 'a' + 10;
      if (value > (~0ULL >> 5))
        error("integer literal does not fit in 64 bits (template integers are 64-bit)", begin);
      value = value * base + d;
    }
    if (value > static_cast<unsigned long long>(INT64_MAX))
      error("integer literal does not fit in 64 bits (template integers are 64-bit)", begin);
    pos_ = p;
    tokens_.push_back(Token{TokenType::Integer, std::to_string(value), begin});
  }

  char32_t read_hex(size_t digits, size_t at) {
    if (pos_ + digits > src_.size()) error("truncated escape in string literal", at);
    char32_t value = 0;
    for (size_t i = 0; i < digits; ++i) {
      char h = src_[pos_ + i];
      if (!std::isxdigit(static_cast<unsigned char>(h)))
        error("invalid escape in string literal", at);
      value = value * 16 + (is_digit(h) ? h - '0' : (std::tolower(h) - 'a' + 10));
    }
    pos_ += digits;
    return value;
  }

  void scan_escape(std::string& out, size_t at) {
    char e = src_[pos_++];
    switch (e) {
      case 'n':
        out += '\n';
        return;
      case 't':
        out += '\t';
        return;
      case 'r':
        out += '\r';
        return;
      case '\\':
        out += '\\';
        return;
      case '\'':
        out += '\'';
        return;
      case '"':
        out += '"';
        return;
      case '0':
        out += '\0';
        return;
      case 'a':
        out += '\a';
        return;
      case 'b':
        out += '\b';
        return;
      case 'f':
        out += '\f';
        return;
      case 'v':
        out += '\v';
        return;
      case '\n':
        return;
      case 'N':
        error("malformed \\N character escape (named escapes are not supported)", at);
      case 'x':
        utf8_append(out, read_hex(2, at));
        return;
      case 'u':
        utf8_append(out, read_hex(4, at));
        return;
      case 'U': {
        char32_t cp = read_hex(8, at);
        if (cp > 0x10FFFF) error("invalid \\U escape in string literal", at);
        utf8_append(out, cp);
        return;
      }
      default:
        out += '\\';
        out += e;
    }
  }

  void scan_string() {
    size_t begin = pos_;
    char quote = src_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= src_.size()) error("unterminated string literal", begin);
      char c = src_[pos_++];
      if (c == quote) break;
      if (c == '\\' && pos_ < src_.size()) {
        scan_escape(value, begin);
      } else {
        value += c;
      }
    }
    tokens_.push_back(Token{TokenType::String, std::move(value), begin});
  }

  void scan_operator(int& depth) {
    static const char* two[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two) {
      if (src_.compare(pos_, 2, op) == 0) {
        tokens_.push_back(Token{TokenType::Operator, op, pos_});
        pos_ += 2;
        return;
      }
    }
    char c = src_[pos_];
    if (std::string_view("+-*/%~<>=.,:|()[]{}").find(c) == std::string_view::npos) {
      error(fmt::format("unexpected character '{}' in template code", c), pos_);
    }
    if (c == '(' || c == '[' || c == '{') ++depth;
    if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
    tokens_.push_back(Token{TokenType::Operator, std::string(1, c), pos_});
    ++pos_;
  }

  std::string_view src_;
  LineIndex lines_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  return Lexer(source).run();
}

}  // namespace shardlm::tmpl
