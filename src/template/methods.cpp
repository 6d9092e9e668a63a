// Python methods on str, dict and list values that chat templates call.
#include "template/methods.h"

#include <algorithm>
#include <set>

#include "template/evaluator.h"
#include "template/operators.h"
#include "template/python_format.h"
#include "template/string_ops.h"
#include "template/template_error.h"
#include "template/utf8.h"

namespace shardlm::tmpl {

namespace {

const std::set<std::string> kStringMethods = {
    "strip",   "lstrip",  "rstrip",  "split",      "rsplit",  "startswith", "endswith",
    "upper",   "lower",   "replace", "format",     "title",   "capitalize", "find",
    "rfind",   "count",   "join",    "splitlines", "isdigit", "isalpha",    "isalnum",
    "isspace", "isupper", "islower", "index"};
const std::set<std::string> kDictMethods = {"items", "keys", "values", "get"};
const std::set<std::string> kListMethods = {"index", "count"};
const std::set<std::string> kMutatingMethods = {"append",  "extend",     "insert", "pop",
                                                "remove",  "reverse",    "sort",   "clear",
                                                "popitem", "setdefault", "update"};

const Value& arg(const CallArgs& args, size_t i, const char* name, const char* method) {
  if (i < args.positional.size()) return args.positional[i];
  if (const Value* v = args.kwarg(name)) return *v;
  eval_fail("{}() missing required argument '{}'", method, name);
}

const Value* opt_arg(const CallArgs& args, size_t i, const char* name) {
  if (i < args.positional.size()) return &args.positional[i];
  return args.kwarg(name);
}

const std::string& str_arg(const Value& v, const char* method) {
  if (!v.is_string()) eval_fail("{}() argument must be str, not {}", method, v.type_name());
  return v.as_string();
}

Value string_list(std::vector<std::string> parts) {
  ValueList out;
  out.reserve(parts.size());
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::list(std::move(out));
}

// The optional strip/split separator: absent or None means whitespace.
const std::string* sep_arg(const CallArgs& args, size_t i, const char* name, const char* method) {
  const Value* v = opt_arg(args, i, name);
  if (!v || v->is_none()) return nullptr;
  return &str_arg(*v, method);
}

int64_t int_arg(const CallArgs& args, size_t i, const char* name, int64_t def) {
  const Value* v = opt_arg(args, i, name);
  if (!v || v->is_none()) return def;
  if (!v->is_int() && !v->is_bool()) eval_fail("'{}' must be an integer", name);
  return v->as_int();
}

bool affix_match(const std::string& s, const Value& affix, bool prefix, const char* method) {
  auto one = [&](const Value& a) {
    const std::string& x = str_arg(a, method);
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0
                  : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_tuple()) {
    for (const Value& a : affix.as_list()) {
      if (one(a)) return true;
    }
    return false;
  }
  return one(affix);
}

// str.format with "{}", "{0}", "{name}", "!r"/"!s" conversions and "{{"/"}}" escapes.
std::string brace_format(const std::string& fmt_str, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt_str.size(); ++i) {
    char c = fmt_str[i];
    if (c == '}') {
      if (i + 1 < fmt_str.size() && fmt_str[i + 1] == '}')
        ++i;
      else
        eval_fail("Single '}}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < fmt_str.size() && fmt_str[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    size_t close = fmt_str.find('}', i);
    if (close == std::string::npos) eval_fail("Single '{{' encountered in format string");
    std::string field = fmt_str.substr(i + 1, close - i - 1);
    i = close;
    char conversion = 's';
    if (size_t bang = field.find('!'); bang != std::string::npos) {
      conversion = bang + 1 < field.size() ? field[bang + 1] : 's';
      field.resize(bang);
    }
    if (field.find(':') != std::string::npos)
      eval_fail("format specs are not supported in str.format");
    const Value* v = nullptr;
    if (field.empty() || std::isdigit(static_cast<unsigned char>(field[0]))) {
      size_t index = field.empty() ? auto_index++ : std::stoul(field);
      if (index >= args.positional.size()) eval_fail("Replacement index {} out of range", index);
      v = &args.positional[index];
    } else {
      v = args.kwarg(field);
      if (!v) eval_fail("KeyError: '{}'", field);
    }
    out += conversion == 'r' ? v->repr() : v->str();
  }
  return out;
}

Value string_method(Evaluator& ev, const std::string& s, const std::string& name,
                    const CallArgs& args) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const std::string* chars = sep_arg(args, 0, "chars", name.c_str());
    return Value::string(py_strip(s, chars, name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    const std::string* sep = sep_arg(args, 0, "sep", name.c_str());
    int64_t maxsplit = int_arg(args, 1, "maxsplit", -1);
    return string_list(name == "split" ? py_split(s, sep, maxsplit) : py_rsplit(s, sep, maxsplit));
  }
  if (name == "startswith" || name == "endswith") {
    return Value::boolean(
        affix_match(s, arg(args, 0, "prefix", name.c_str()), name == "startswith", name.c_str()));
  }
  if (name == "upper") return Value::string(py_upper(s));
  if (name == "lower") return Value::string(py_lower(s));
  if (name == "title") return Value::string(py_title(s));
  if (name == "capitalize") return Value::string(py_capitalize(s));
  if (name == "replace") {
    std::string out = py_replace(s, str_arg(arg(args, 0, "old", "replace"), "replace"),
                                 str_arg(arg(args, 1, "new", "replace"), "replace"),
                                 int_arg(args, 2, "count", -1));
    ev.check_size(out.size());
    return Value::string(std::move(out));
  }
  if (name == "format") {
    std::string out = brace_format(s, args);
    ev.check_size(out.size());
    return Value::string(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "index") {
    const std::string& sub = str_arg(arg(args, 0, "sub", name.c_str()), name.c_str());
    size_t pos = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (pos == std::string::npos) {
      if (name == "index") eval_fail("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, pos))));
  }
  if (name == "count") {
    const std::string& sub = str_arg(arg(args, 0, "sub", "count"), "count");
    if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
    int64_t n = 0;
    for (size_t pos = s.find(sub); pos != std::string::npos; pos = s.find(sub, pos + sub.size()))
      ++n;
    return Value::integer(n);
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value& v : iterate(arg(args, 0, "iterable", "join"))) {
      if (!first) out += s;
      first = false;
      out += str_arg(v, "join");
      ev.check_size(out.size());
    }
    return Value::string(std::move(out));
  }
  if (name == "splitlines") {
    const Value* keep = opt_arg(args, 0, "keepends");
    return string_list(py_splitlines(s, keep && keep->truthy()));
  }
  auto all_of = [&](auto pred) {
    if (s.empty()) return Value::boolean(false);
    for (char c : s) {
      if (!pred(static_cast<unsigned char>(c))) return Value::boolean(false);
    }
    return Value::boolean(true);
  };
  if (name == "isdigit") return all_of([](unsigned char c) { return std::isdigit(c) != 0; });
  if (name == "isalpha" || name == "isalnum") {
    // Non-ASCII characters count as letters unless they are whitespace (an approximation).
    bool alnum = name == "isalnum";
    std::vector<char32_t> cps = utf8_decode(s);
    return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), [&](char32_t c) {
      if (c >= 0x80) return !is_py_space(c);
      return (alnum ? std::isalnum(static_cast<int>(c)) : std::isalpha(static_cast<int>(c))) != 0;
    }));
  }
  if (name == "isspace") {
    std::vector<char32_t> cps = utf8_decode(s);
    return Value::boolean(!cps.empty() && std::all_of(cps.begin(), cps.end(), is_py_space));
  }
  bool has_upper = false, has_lower = false;
  for (char c : s) {
    has_upper |= std::isupper(static_cast<unsigned char>(c)) != 0;
    has_lower |= std::islower(static_cast<unsigned char>(c)) != 0;
  }
  if (name == "isupper") return Value::boolean(has_upper && !has_lower);
  if (name == "islower") return Value::boolean(has_lower && !has_upper);
  eval_fail("'str' object has no attribute '{}'", name);
}

Value dict_method(const ValueDict& dict, const std::string& name, const CallArgs& args) {
  ValueList out;
  if (name == "get") {
    const Value& key = arg(args, 0, "key", "get");
    const Value* v = dict.find(key);
    if (v) return *v;
    const Value* def = opt_arg(args, 1, "default");
    return def ? *def : Value::none();
  }
  for (const auto& [key, value] : dict.items()) {
    if (name == "items") out.push_back(Value::list({key, value}, true));
    if (name == "keys") out.push_back(key);
    if (name == "values") out.push_back(value);
  }
  return Value::list(std::move(out));
}

Value list_method(const ValueList& list, const std::string& name, const CallArgs& args) {
  const Value& x = arg(args, 0, "value", name.c_str());
  int64_t n = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] == x) {
      if (name == "index") return Value::integer(static_cast<int64_t>(i));
      ++n;
    }
  }
  if (name == "index") eval_fail("{} is not in list", x.repr());
  return Value::integer(n);
}

}  // namespace

bool has_method(const Value& object, const std::string& name) {
  if (object.is_string()) return kStringMethods.count(name) > 0;
  if (object.is_dict()) return kDictMethods.count(name) > 0 || kMutatingMethods.count(name) > 0;
  if (object.is_iterator()) return false;
  if (object.is_list()) return kListMethods.count(name) > 0 || kMutatingMethods.count(name) > 0;
  return false;
}

Value call_method(Evaluator& ev, const Value& object, const std::string& name,
                  const CallArgs& args) {
  if (kMutatingMethods.count(name) && (object.is_dict() || object.is_list())) {
    eval_fail("access to attribute '{}' of '{}' object is unsafe", name, object.type_name());
  }
  if (object.is_string()) return string_method(ev, object.as_string(), name, args);
  if (object.is_dict()) return dict_method(object.as_dict(), name, args);
  if (object.is_list()) return list_method(object.as_list(), name, args);
  eval_fail("'{}' object has no attribute '{}'", object.type_name(), name);
}

Value bound_method(const Value& object, const std::string& name) {
  return Value::function(object.type_name() + "." + name,
                         [object, name](Evaluator& ev, const CallArgs& args) {
                           return call_method(ev, object, name, args);
                         });
}

}  // namespace shardlm::tmpl
