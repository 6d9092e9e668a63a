// Python's repr() of floats and strings and json.dumps, byte for byte, so rendered prompts match
// what transformers produces.
#include "template/python_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "template/template_error.h"
#include "template/utf8.h"

namespace shardlm::tmpl {

// Python repr(float): the shortest round-trip digits, fixed notation for exponents in [-4, 16),
// scientific ("1e+16", "1.5e-07") outside.
std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  size_t e = sci.find('e');
  int exponent = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (size_t i = 0; i < e; ++i) {
    if (sci[i] != '.') digits += sci[i];
  }
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(-exponent - 1, '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exponent + 1) {
      out += digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_buf;
}

static bool python_printable(char32_t cp) {
  if (cp < 0x20 || cp == 0x7F) return false;
  if (cp >= 0x80 && cp <= 0xA0) return false;
  if (cp == 0xAD || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF) return false;
  if (cp >= 0x2000 && cp <= 0x200F) return false;  // spaces (Zs) and format characters (Cf)
  if (cp == 0x1680 || cp == 0x202F || cp == 0x205F || cp == 0x3000) return false;      // Zs
  if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x206F)) return false;  // Cf
  if (cp == 0x061C || cp == 0x180E || (cp >= 0xFFF9 && cp <= 0xFFFB)) return false;    // Cf
  if (cp >= 0x2060 && cp <= 0x2064) return false;
  if (cp >= 0xD800 && cp <= 0xDFFF) return false;
  if (cp >= 0xE000 && cp <= 0xF8FF) return false;
  return true;
}

static void append_escape(std::string& out, char32_t cp) {
  char buf[16];
  if (cp < 0x100) {
    snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp));
  } else if (cp < 0x10000) {
    snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
  } else {
    snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(cp));
  }
  out += buf;
}

std::string python_string_repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t cp : utf8_decode(s)) {
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (!python_printable(cp)) {
      append_escape(out, cp);
    } else {
      utf8_append(out, cp);
    }
  }
  out += quote;
  return out;
}

static void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  char buf[16];
  for (char32_t cp : utf8_decode(s)) {
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
      if (cp >= 0x10000) {
        char32_t v = cp - 0x10000;
        snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                 static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
      }
      out += buf;
    } else {
      utf8_append(out, cp);
    }
  }
  out += '"';
}

namespace {

std::string json_float(double f) {
  if (std::isnan(f)) return "NaN";
  if (std::isinf(f)) return f > 0 ? "Infinity" : "-Infinity";
  return python_float_repr(f);
}

// json.dumps turns str, int, float, bool and None keys into strings and refuses the rest.
std::string json_key(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::String:
      return key.as_string();
    case Value::Kind::Int:
      return std::to_string(key.as_int());
    case Value::Kind::Float:
      return json_float(key.as_double());
    case Value::Kind::Bool:
      return key.as_bool() ? "true" : "false";
    case Value::Kind::None:
      return "null";
    default:
      eval_fail("keys must be str, int, float, bool or None, not {}", key.type_name());
  }
}

class JsonDumper {
 public:
  explicit JsonDumper(const JsonDumpOptions& options) : options_(options) {
    item_sep_ = options.item_separator.value_or(options.indent ? "," : ", ");
    key_sep_ = options.key_separator.value_or(": ");
  }

  void dump(const Value& value, int depth) {
    if (depth > 512) eval_fail("tojson: value nested too deeply");
    switch (value.kind()) {
      case Value::Kind::None:
        out_ += "null";
        return;
      case Value::Kind::Bool:
        out_ += value.as_bool() ? "true" : "false";
        return;
      case Value::Kind::Int:
        out_ += std::to_string(value.as_int());
        return;
      case Value::Kind::Float:
        dump_float(value.as_double());
        return;
      case Value::Kind::String:
        append_json_string(out_, value.as_string(), options_.ensure_ascii);
        return;
      case Value::Kind::List:
        if (value.is_iterator()) eval_fail("Object of type generator is not JSON serializable");
        dump_list(value.as_list(), depth);
        return;
      case Value::Kind::Dict:
        dump_dict(value.as_dict(), depth);
        return;
      default:
        eval_fail("Object of type {} is not JSON serializable", value.type_name());
    }
  }
  std::string take() { return std::move(out_); }

 private:
  void dump_float(double f) { out_ += json_float(f); }

  void newline(int depth) {
    if (!options_.indent) return;
    out_ += '\n';
    for (int i = 0; i < depth; ++i) out_ += *options_.indent;
  }

  void dump_list(const ValueList& items, int depth) {
    if (items.empty()) {
      out_ += "[]";
      return;
    }
    out_ += '[';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out_ += item_sep_;
      newline(depth + 1);
      dump(items[i], depth + 1);
    }
    newline(depth);
    out_ += ']';
  }

  void dump_dict(const ValueDict& dict, int depth) {
    if (dict.size() == 0) {
      out_ += "{}";
      return;
    }
    std::vector<const ValueDict::Item*> entries;
    for (const auto& item : dict.items()) entries.push_back(&item);
    if (options_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](auto* a, auto* b) { return value_less(a->first, b->first); });
    }
    out_ += '{';
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i) out_ += item_sep_;
      newline(depth + 1);
      append_json_string(out_, json_key(entries[i]->first), options_.ensure_ascii);
      out_ += key_sep_;
      dump(entries[i]->second, depth + 1);
    }
    newline(depth);
    out_ += '}';
  }

  const JsonDumpOptions& options_;
  std::string item_sep_;
  std::string key_sep_;
  std::string out_;
};

}  // namespace

std::string python_json_dumps(const Value& value, const JsonDumpOptions& options) {
  JsonDumper dumper(options);
  dumper.dump(value, 0);
  return dumper.take();
}

}  // namespace shardlm::tmpl
