// Python's printf-style `str % args` (used by the `%` operator and the `format` filter): mapping
// keys, the flags "-+ #0", width and precision (also "*"), and the conversions s r a c d i u o x
// X e E f F g G %, with Python's padding, sign and alternate-form rules.
#include "template/percent_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "template/python_format.h"
#include "template/template_error.h"
#include "template/utf8.h"

namespace shardlm::tmpl {

namespace {

struct Spec {
  bool left = false, plus = false, space = false, alt = false, zero = false;
  int64_t width = -1;
  int64_t precision = -1;
  char conv = 0;
};

// Walks the arguments as CPython does: a tuple gives its items one by one; any other value is one
// argument; a dict or list (a "mapping" to CPython) is also what %(key)s looks keys up in.
class ArgCursor {
 public:
  explicit ArgCursor(const Value& args) : args_(args) {
    if (args.is_tuple()) {
      tuple_ = &args.as_list();
    } else {
      single_left_ = true;
    }
  }
  const Value& next() {
    if (tuple_ && index_ < tuple_->size()) return (*tuple_)[index_++];
    if (!tuple_ && single_left_) {
      single_left_ = false;
      return args_;
    }
    eval_fail("not enough arguments for format string");
  }
  const Value& by_key(const std::string& key) {
    if (!args_.is_dict()) eval_fail("format requires a mapping");
    const Value* v = args_.as_dict().find(key);
    if (!v) eval_fail("KeyError: '{}'", key);
    return *v;
  }
  void finish() const {
    // Python skips the check for anything with __getitem__ that is not a tuple or a string:
    // dicts, lists, and jinja2's Undefined (whose __getitem__ raises only when called).
    bool mapping =
        args_.is_dict() || (args_.is_list() && !args_.is_tuple()) || args_.is_undefined();
    bool left = tuple_ ? index_ < tuple_->size() : single_left_;
    if (left && !mapping) eval_fail("not all arguments converted during string formatting");
  }

 private:
  const Value& args_;
  const ValueList* tuple_ = nullptr;
  size_t index_ = 0;
  bool single_left_ = false;
};

void parse_flags(const std::string& f, size_t& i, Spec& spec) {
  for (; i < f.size(); ++i) {
    switch (f[i]) {
      case '-':
        spec.left = true;
        break;
      case '+':
        spec.plus = true;
        break;
      case ' ':
        spec.space = true;
        break;
      case '#':
        spec.alt = true;
        break;
      case '0':
        spec.zero = true;
        break;
      default:
        return;
    }
  }
}

// A width or precision: digits, or "*" taking the next argument (which must be an int).
int64_t parse_number(const std::string& f, size_t& i, ArgCursor& cursor, const char* what) {
  if (i < f.size() && f[i] == '*') {
    ++i;
    const Value& v = cursor.next();
    if (!v.is_int() && !v.is_bool()) eval_fail("* wants int");
    if (v.as_int() > (1 << 20) || v.as_int() < -(1 << 20)) eval_fail("{} too big", what);
    return v.as_int();
  }
  int64_t n = -1;
  while (i < f.size() && f[i] >= '0' && f[i] <= '9') {
    n = (n < 0 ? 0 : n) * 10 + (f[i++] - '0');
    if (n > (1 << 20)) eval_fail("{} too big", what);
  }
  return n;
}

// Sign and padding: `sign_prefix` ("-", "+0x", ...) stays in front of zero padding.
std::string pad(const Spec& spec, const std::string& sign_prefix, const std::string& body,
                bool numeric) {
  size_t len = utf8_length(sign_prefix) + utf8_length(body);
  if (spec.width <= static_cast<int64_t>(len)) return sign_prefix + body;
  std::string fill(static_cast<size_t>(spec.width) - len, numeric && spec.zero ? '0' : ' ');
  if (spec.left) return sign_prefix + body + std::string(fill.size(), ' ');
  if (numeric && spec.zero) return sign_prefix + fill + body;
  return fill + sign_prefix + body;
}

std::string sign_of(const Spec& spec, bool negative) {
  return negative ? "-" : spec.plus ? "+" : spec.space ? " " : "";
}

std::string format_integer(const Spec& spec, const Value& v) {
  char conv = spec.conv;
  bool decimal = conv == 'd' || conv == 'i' || conv == 'u';
  int64_t n;
  if (v.is_float() && decimal) {
    double d = v.as_double();
    if (std::isnan(d)) eval_fail("cannot convert float NaN to integer");
    if (std::isinf(d)) eval_fail("cannot convert float infinity to integer");
    if (std::fabs(d) >= 9.2e18)
      eval_fail("%{} format: {} does not fit in 64 bits", conv, python_float_repr(d));
    n = static_cast<int64_t>(d);
  } else if (v.is_int() || v.is_bool()) {
    n = v.as_int();
  } else if (decimal) {
    eval_fail("%{} format: a real number is required, not {}", conv, v.type_name());
  } else {
    eval_fail("%{} format: an integer is required, not {}", conv, v.type_name());
  }
  uint64_t magnitude = n < 0 ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
  const char* pattern = decimal ? "%llu" : conv == 'o' ? "%llo" : conv == 'x' ? "%llx" : "%llX";
  char buf[32];
  snprintf(buf, sizeof(buf), pattern, static_cast<unsigned long long>(magnitude));
  std::string digits = buf;
  if (spec.precision > static_cast<int64_t>(digits.size()))
    digits.insert(0, static_cast<size_t>(spec.precision) - digits.size(), '0');
  std::string prefix;
  if (spec.alt && !decimal) prefix = conv == 'o' ? "0o" : conv == 'x' ? "0x" : "0X";
  return pad(spec, sign_of(spec, n < 0) + prefix, digits, true);
}

std::string format_float(const Spec& spec, const Value& v) {
  if (!v.is_number()) eval_fail("must be real number, not {}", v.type_name());
  double d = v.as_double();
  bool upper = spec.conv == 'E' || spec.conv == 'F' || spec.conv == 'G';
  std::string body;
  if (std::isnan(d) || std::isinf(d)) {
    body = std::isnan(d) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
  } else {
    int64_t precision = spec.precision < 0 ? 6 : std::min<int64_t>(spec.precision, 1000);
    char pattern[16];
    snprintf(pattern, sizeof(pattern), "%%%s.*%c", spec.alt ? "#" : "", spec.conv);
    std::vector<char> buf(1400);
    snprintf(buf.data(), buf.size(), pattern, static_cast<int>(precision), std::fabs(d));
    body = buf.data();
  }
  return pad(spec, sign_of(spec, std::signbit(d) && !std::isnan(d)), body, true);
}

std::string format_char(const Spec& spec, const Value& v) {
  std::string body;
  if (v.is_int() || v.is_bool()) {
    int64_t cp = v.as_int();
    if (cp < 0 || cp >= 0x110000) eval_fail("%c arg not in range(0x110000)");
    utf8_append(body, static_cast<char32_t>(cp));
  } else if (v.is_string() && utf8_length(v.as_string()) == 1) {
    body = v.as_string();
  } else {
    eval_fail("%c requires int or char");
  }
  return pad(spec, "", body, false);
}

// repr() with every non-ASCII character escaped, as Python's ascii() does.
std::string ascii_repr(const Value& v) {
  std::string out;
  char buf[16];
  for (char32_t cp : utf8_decode(v.repr())) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
      continue;
    }
    const char* pattern = cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x";
    snprintf(buf, sizeof(buf), pattern, static_cast<unsigned>(cp));
    out += buf;
  }
  return out;
}

std::string format_text(const Spec& spec, const Value& v) {
  std::string text = spec.conv == 's' ? v.str() : spec.conv == 'r' ? v.repr() : ascii_repr(v);
  if (spec.precision >= 0 && static_cast<int64_t>(utf8_length(text)) > spec.precision) {
    std::vector<char32_t> cps = utf8_decode(text);
    text = utf8_encode(cps, 0, static_cast<size_t>(spec.precision));
  }
  return pad(spec, "", text, false);
}

std::string format_one(const Spec& spec, const Value& v) {
  switch (spec.conv) {
    case 's':
    case 'r':
    case 'a':
      return format_text(spec, v);
    case 'c':
      return format_char(spec, v);
    case 'd':
    case 'i':
    case 'u':
    case 'o':
    case 'x':
    case 'X':
      return format_integer(spec, v);
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
      return format_float(spec, v);
    default:
      eval_fail("unsupported format character '{}'", spec.conv);
  }
}

// The "(key)" of "%(key)s", with nested parentheses counted as CPython does.
std::string parse_key(const std::string& f, size_t& i) {
  int depth = 1;
  size_t start = ++i;
  for (; i < f.size(); ++i) {
    if (f[i] == '(') ++depth;
    if (f[i] == ')' && --depth == 0) break;
  }
  if (depth != 0) eval_fail("incomplete format key");
  return f.substr(start, i++ - start);
}

}  // namespace

std::string percent_format(const std::string& format, const Value& args) {
  ArgCursor cursor(args);
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    ++i;
    const Value* keyed = nullptr;
    if (i < format.size() && format[i] == '(') keyed = &cursor.by_key(parse_key(format, i));
    Spec spec;
    parse_flags(format, i, spec);
    spec.width = parse_number(format, i, cursor, "width");
    if (spec.width < -1) {  // a negative "*" width means left-justified
      spec.left = true;
      spec.width = -spec.width;
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.precision = std::max<int64_t>(parse_number(format, i, cursor, "precision"), 0);
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) eval_fail("incomplete format");
    spec.conv = format[i];
    if (spec.conv == '%') {
      out += '%';
      continue;
    }
    out += format_one(spec, keyed ? *keyed : cursor.next());
  }
  cursor.finish();
  return out;
}

}  // namespace shardlm::tmpl
