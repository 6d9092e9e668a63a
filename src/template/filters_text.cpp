// Text and scalar filters: trim, upper, tojson, indent, replace, int, default, ...
#include <cmath>
#include <ctime>

#include "template/evaluator.h"
#include "template/filters.h"
#include "template/methods.h"
#include "template/operators.h"
#include "template/python_format.h"
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

// jinja2's title: capitalise each piece between "-", whitespace and opening brackets.
Value f_title(Evaluator&, const Value& v, const CallArgs&) {
  std::string s = text_of(v), out;
  auto is_sep = [](char c) {
    return c == '-' || is_py_space(c) || c == '(' || c == '{' || c == '[' || c == '<';
  };
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    bool sep = is_sep(s[i]);
    while (j < s.size() && is_sep(s[j]) == sep) ++j;
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

bool parse_int_text(const std::string& text, int64_t& out) {
  std::string s = py_strip(text, nullptr, true, true);
  std::string digits;
  for (char c : s) {
    if (c != '_') digits += c;
  }
  if (digits.empty()) return false;
  size_t pos = 0;
  try {
    long long value = std::stoll(digits, &pos, 10);
    if (pos != digits.size()) return false;
    out = value;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool parse_float_text(const std::string& text, double& out) {
  std::string s = py_strip(text, nullptr, true, true);
  if (s.empty()) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

Value f_int(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* def = filter_arg(args, 0, "default");
  Value fallback = def ? *def : Value::integer(0);
  if (v.is_undefined()) fail_undefined(v);  // int(Undefined) raises in jinja2
  if (v.is_int()) return v;
  if (v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_double()) || std::fabs(v.as_double()) > 9.2e18) return fallback;
    return Value::integer(static_cast<int64_t>(v.as_double()));
  }
  if (v.is_string()) {
    int64_t i;
    if (parse_int_text(v.as_string(), i)) return Value::integer(i);
    double d;
    if (parse_float_text(v.as_string(), d) && std::isfinite(d) && std::fabs(d) < 9.2e18) {
      return Value::integer(static_cast<int64_t>(d));
    }
  }
  return fallback;
}

Value f_float(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* def = filter_arg(args, 0, "default");
  Value fallback = def ? *def : Value::floating(0.0);
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value::floating(v.as_double());
  double d;
  if (v.is_string() && parse_float_text(v.as_string(), d)) return Value::floating(d);
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

Value f_format(Evaluator& ev, const Value& v, const CallArgs& args) {
  Value tuple = Value::list(args.positional, true);
  std::string out = percent_format(text_of(v), tuple);
  ev.check_size(out.size());
  return Value::string(std::move(out));
}

Value f_abs(Evaluator&, const Value& v, const CallArgs&) {
  if (v.is_float()) return Value::floating(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) eval_fail("integer overflow");
    return Value::integer(std::llabs(v.as_int()));
  }
  eval_fail("bad operand type for abs(): '{}'", v.type_name());
}

// jinja2's round(precision=0, method='common'); 'common' is Python's round (half to even).
Value f_round(Evaluator&, const Value& v, const CallArgs& args) {
  const Value* p = filter_arg(args, 0, "precision");
  const Value* m = filter_arg(args, 1, "method");
  int64_t precision = p ? p->as_int() : 0;
  std::string method = m ? m->str() : "common";
  if (!v.is_number()) eval_fail("round: a number is required, not {}", v.type_name());
  if (v.is_int() && method == "common") return v;
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * scale;
  double r = method == "ceil"    ? std::ceil(x)
             : method == "floor" ? std::floor(x)
                                 : std::nearbyint(x);
  if (method != "common" && method != "ceil" && method != "floor") {
    eval_fail("method must be common, ceil or floor");
  }
  return Value::floating(r / scale);
}

Value f_wordcount(Evaluator&, const Value& v, const CallArgs&) {
  return Value::integer(static_cast<int64_t>(py_split(text_of(v), nullptr, -1).size()));
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
