// Text and scalar filters: trim, upper, tojson, indent, replace, int, default, ...
#include <cmath>
#include <ctime>

#include "template/evaluator.h"
#include "template/filters.h"
#include "template/methods.h"
#include "template/number_parse.h"
#include "template/operators.h"
#include "template/percent_format.h"
#include "template/python_format.h"
#include "template/python_round.h"
#include "template/string_ops.h"
#include "template/template_error.h"
#include "template/utf8.h"

namespace shardlm::tmpl {

namespace {

std::string text_of(const Value& v) {
  return v.str();
}

Value f_trim(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* chars = filter_arg(args, 0, "chars");
  const std::string* c = chars && chars->is_string() ? &chars->as_string() : nullptr;
  return Value::string(py_strip(text_of(v), c, true, true));
}

Value f_upper(Evaluator&, const Value& v, const CallArgs&) {
  return Value::string(py_upper(text_of(v)));
}
Value f_lower(Evaluator&, const Value& v, const CallArgs&) {
  return Value::string(py_lower(text_of(v)));
}
Value f_capitalize(Evaluator&, const Value& v, const CallArgs&) {
  return Value::string(py_capitalize(text_of(v)));
}

// jinja2's title: capitalise each piece between runs of "-", whitespace and opening brackets.
Value f_title(Evaluator&, const Value& v, const CallArgs&) {
  std::string s = text_of(v), out;
  auto is_sep = [](char32_t c) {
    return c == '-' || is_py_space(c) || c == '(' || c == '{' || c == '[' || c == '<';
  };
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i, probe = i;
    bool sep = is_sep(utf8_next(s, probe));
    while (j < s.size()) {
      probe = j;
      if (is_sep(utf8_next(s, probe)) != sep) break;
      j = probe;
    }
    out += py_capitalize(s.substr(i, j - i));
    i = j;
  }
  return Value::string(out);
}

Value f_string(Evaluator&, const Value& v, const CallArgs&) {
  return Value::string(text_of(v));
}
Value f_safe(Evaluator&, const Value& v, const CallArgs&) {
  return Value::string(text_of(v));
}

Value f_length(Evaluator&, const Value& v, const CallArgs&) {
  return Value::integer(length_of(v));
}

Value f_default(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* def = filter_arg(args, 0, "default_value");
  const Value* boolean = filter_arg(args, 1, "boolean");
  bool use_default = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
  if (!use_default) return v;
  return def ? *def : Value::string("");
}

// transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value f_tojson(Evaluator& ev, const Value& v, const CallArgs& args) {
  JsonDumpOptions options;
  if (const Value* a = filter_arg(args, 0, "ensure_ascii")) options.ensure_ascii = a->truthy();
  if (const Value* indent = filter_arg(args, 1, "indent"); indent && !indent->is_none()) {
    if (indent->is_string())
      options.indent = indent->as_string();
    else if (indent->is_int())
      options.indent = std::string(std::clamp<int64_t>(indent->as_int(), 0, 1024), ' ');
    else
      eval_fail("tojson: indent must be an int or a string");
  }
  if (const Value* seps = filter_arg(args, 2, "separators"); seps && !seps->is_none()) {
    if (!seps->is_list() || seps->as_list().size() != 2 || !seps->as_list()[0].is_string() ||
        !seps->as_list()[1].is_string()) {
      eval_fail("tojson: separators must be a pair of strings");
    }
    options.item_separator = seps->as_list()[0].as_string();
    options.key_separator = seps->as_list()[1].as_string();
  }
  if (const Value* s = filter_arg(args, 3, "sort_keys")) options.sort_keys = s->truthy();
  std::string out = python_json_dumps(v, options);
  ev.check_size(out.size());
  return Value::string(std::move(out));
}

Value f_replace(Evaluator& ev, const Value& v, const CallArgs& args) {
  const Value* old_v = filter_arg(args, 0, "old");
  const Value* new_v = filter_arg(args, 1, "new");
  const Value* count = filter_arg(args, 2, "count");
  if (!old_v || !new_v) eval_fail("replace filter needs old and new strings");
  int64_t n = count && !count->is_none() ? count->as_int() : -1;
  std::string out = py_replace(text_of(v), old_v->str(), new_v->str(), n);
  ev.check_size(out.size());
  return Value::string(std::move(out));
}

[[noreturn]] void fail_too_big(const std::string& what) {
  eval_fail("int filter: {} does not fit in 64 bits (template integers are 64-bit)", what);
}

// int(float) truncates; beyond 64 bits Python would give an exact big int, which shardlm refuses.
int64_t int_of_float(double d) {
  if (std::fabs(d) >= 9223372036854775808.0) fail_too_big(python_float_repr(d));
  return static_cast<int64_t>(d);
}

// jinja2's int(default=0, base=10): int(value, base) for text, int(value) otherwise, then
// int(float(value)), then the default.
Value f_int(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* def = filter_arg(args, 0, "default");
  const Value* base = filter_arg(args, 1, "base");
  Value fallback = def ? *def : Value::integer(0);
  if (v.is_undefined()) fail_undefined(v);  // int(Undefined) raises in jinja2
  if (v.is_int()) return v;
  if (v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    double d = v.as_double();
    if (std::isnan(d)) return fallback;  // ValueError, caught by jinja2
    if (std::isinf(d)) eval_fail("cannot convert float infinity to integer");  // OverflowError
    return Value::integer(int_of_float(d));
  }
  if (!v.is_string()) return fallback;
  int64_t i;
  int b = base && (base->is_int() || base->is_bool()) ? static_cast<int>(base->as_int()) : 10;
  IntParse parsed = parse_python_int(v.as_string(), b, i);
  if (parsed == IntParse::Ok) return Value::integer(i);
  if (parsed == IntParse::TooBig) fail_too_big("'" + v.as_string() + "'");
  double d;
  if (parse_python_float(v.as_string(), d) && std::isfinite(d))
    return Value::integer(int_of_float(d));
  return fallback;
}

Value f_float(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* def = filter_arg(args, 0, "default");
  Value fallback = def ? *def : Value::floating(0.0);
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value::floating(v.as_double());
  double d;
  if (v.is_string() && parse_python_float(v.as_string(), d)) return Value::floating(d);
  return fallback;
}

// jinja2's indent(width=4, first=False, blank=False).
Value f_indent(Evaluator& ev, const Value& v, const CallArgs& args) {
  std::string indention = "    ";
  if (const Value* w = filter_arg(args, 0, "width")) {
    if (w->is_string())
      indention = w->as_string();
    else
      indention = std::string(std::clamp<int64_t>(w->as_int(), 0, 1024), ' ');
  }
  const Value* first = filter_arg(args, 1, "first");
  const Value* blank = filter_arg(args, 2, "blank");
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_string())  // jinja2 appends "\n" to the value itself
    eval_fail("unsupported operand type(s) for +=: '{}' and 'str'", v.type_name());
  std::vector<std::string> lines = py_splitlines(text_of(v) + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\n";
      if (blank && blank->truthy())
        out += indention;
      else if (!lines[i].empty())
        out += indention;
    }
    out += lines[i];
    ev.check_size(out.size());
  }
  if (first && first->truthy()) out = indention + out;
  return Value::string(std::move(out));
}

Value f_center(Evaluator& ev, const Value& v, const CallArgs& args) {
  const Value* w = filter_arg(args, 0, "width");
  int64_t width = w ? w->as_int() : 80;
  std::string s = text_of(v);
  int64_t len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return Value::string(s);
  ev.check_size(static_cast<size_t>(width));
  int64_t pad = width - len;
  int64_t left = pad / 2 + (pad & width & 1);
  return Value::string(std::string(left, ' ') + s + std::string(pad - left, ' '));
}

Value f_escape(Evaluator&, const Value& v, const CallArgs&) {
  std::string out;
  for (char c : text_of(v)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value::string(std::move(out));
}

// jinja2's format(*args, **kwargs): value % args, or value % kwargs (a mapping), never both.
Value f_format(Evaluator& ev, const Value& v, const CallArgs& args) {
  if (!args.positional.empty() && !args.keyword.empty())
    eval_fail("can't handle positional and keyword arguments at the same time");
  Value operands = Value::list(args.positional, true);
  if (!args.keyword.empty()) {
    ValueDict mapping;
    for (const auto& [key, value] : args.keyword) mapping.set(key, value);
    operands = Value::dict(std::move(mapping));
  }
  std::string out = percent_format(text_of(v), operands);
  ev.check_size(out.size());
  return Value::string(std::move(out));
}

Value f_abs(Evaluator&, const Value& v, const CallArgs&) {
  if (v.is_float()) return Value::floating(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) fail_int_overflow();
    return Value::integer(std::llabs(v.as_int()));
  }
  eval_fail("bad operand type for abs(): '{}'", v.type_name());
}

// jinja2's round(precision=0, method='common'): Python's round() for 'common'.
Value f_round(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* p = filter_arg(args, 0, "precision");
  const Value* m = filter_arg(args, 1, "method");
  if (p && !p->is_int() && !p->is_bool())
    eval_fail("'{}' object cannot be interpreted as an integer", p->type_name());
  return jinja_round(v, p ? p->as_int() : 0, m ? m->str() : "common");
}

// jinja2 counts matches of \w+. Word characters: ASCII letters, digits and "_", and (an
// approximation of Unicode's categories) every non-ASCII character that is not whitespace.
Value f_wordcount(Evaluator&, const Value& v, const CallArgs&) {
  auto is_word = [](char32_t c) {
    if (c < 0x80) return std::isalnum(static_cast<int>(c)) != 0 || c == '_';
    return !is_py_space(c);
  };
  int64_t words = 0;
  bool in_word = false;
  for (char32_t c : utf8_decode(text_of(v))) {
    bool word = is_word(c);
    words += word && !in_word;
    in_word = word;
  }
  return Value::integer(words);
}

}  // namespace

void register_text_filters(FilterTable& t) {
  t["trim"] = f_trim;
  t["upper"] = f_upper;
  t["lower"] = f_lower;
  t["capitalize"] = f_capitalize;
  t["title"] = f_title;
  t["string"] = f_string;
  t["safe"] = f_safe;
  t["length"] = f_length;
  t["count"] = f_length;
  t["default"] = f_default;
  t["d"] = f_default;
  t["tojson"] = f_tojson;
  t["replace"] = f_replace;
  t["int"] = f_int;
  t["float"] = f_float;
  t["indent"] = f_indent;
  t["center"] = f_center;
  t["escape"] = f_escape;
  t["e"] = f_escape;
  t["format"] = f_format;
  t["abs"] = f_abs;
  t["round"] = f_round;
  t["wordcount"] = f_wordcount;
}

}  // namespace shardlm::tmpl
