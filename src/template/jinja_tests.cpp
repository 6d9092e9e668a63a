// jinja2's tests: `value is defined`, `is none`, `is string`, `is mapping`, `is divisibleby 3`, ...
#include <unordered_map>

#include "template/evaluator.h"
#include "template/filters.h"
#include "template/operators.h"
#include "template/string_ops.h"
#include "template/template_error.h"

namespace shardlm::tmpl {

namespace {

using K = Value::Kind;

const Value& test_arg(const CallArgs& args, const char* test) {
  if (args.positional.empty()) eval_fail("test '{}' needs an argument", test);
  return args.positional[0];
}

bool t_defined(Evaluator&, const Value& v, const CallArgs&) {
  return !v.is_undefined();
}
bool t_undefined(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_undefined();
}
bool t_none(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_none();
}
bool t_boolean(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_bool();
}
bool t_true(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_bool() && v.as_bool();
}
bool t_false(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_bool() && !v.as_bool();
}
bool t_integer(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_int();
}
bool t_float(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_float();
}
bool t_number(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_number();
}
bool t_string(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_string();
}
bool t_mapping(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_dict();
}
bool t_callable(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_function();
}
bool t_iterable(Evaluator&, const Value& v, const CallArgs&) {
  return v.kind() == K::List || v.kind() == K::Dict || v.kind() == K::String ||
         v.kind() == K::Undefined;
}
bool t_sequence(Evaluator& ev, const Value& v, const CallArgs& a) {
  return t_iterable(ev, v, a) && !v.is_iterator();
}
bool t_sameas(Evaluator&, const Value& v, const CallArgs& a) {
  return v.same_object(test_arg(a, "sameas"));
}
bool t_eq(Evaluator&, const Value& v, const CallArgs& a) {
  return v == test_arg(a, "eq");
}
bool t_ne(Evaluator&, const Value& v, const CallArgs& a) {
  return !(v == test_arg(a, "ne"));
}
bool t_lt(Evaluator&, const Value& v, const CallArgs& a) {
  return value_less(v, test_arg(a, "lt"));
}
bool t_gt(Evaluator&, const Value& v, const CallArgs& a) {
  return value_less(test_arg(a, "gt"), v);
}
bool t_le(Evaluator&, const Value& v, const CallArgs& a) {
  return !value_less(test_arg(a, "le"), v);
}
bool t_ge(Evaluator&, const Value& v, const CallArgs& a) {
  return !value_less(v, test_arg(a, "ge"));
}
bool t_in(Evaluator&, const Value& v, const CallArgs& a) {
  return contains(test_arg(a, "in"), v);
}

// jinja2's odd, even and divisibleby are `value % n == r` with Python's %, so floats work and a
// string subject is %-formatting (and fails).
bool mod_equals(Evaluator& ev, const Value& v, const Value& n, int64_t r) {
  return binary_op(ev, "%", v, n) == Value::integer(r);
}
bool t_odd(Evaluator& ev, const Value& v, const CallArgs&) {
  return mod_equals(ev, v, Value::integer(2), 1);
}
bool t_even(Evaluator& ev, const Value& v, const CallArgs&) {
  return mod_equals(ev, v, Value::integer(2), 0);
}
bool t_divisibleby(Evaluator& ev, const Value& v, const CallArgs& a) {
  return mod_equals(ev, v, test_arg(a, "divisibleby"), 0);
}
bool t_lower(Evaluator&, const Value& v, const CallArgs&) {
  std::string s = v.str();
  return py_lower(s) == s && py_upper(s) != s;
}
bool t_upper(Evaluator&, const Value& v, const CallArgs&) {
  std::string s = v.str();
  return py_upper(s) == s && py_lower(s) != s;
}
bool t_filter(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_string() && find_filter(v.as_string());
}
bool t_test(Evaluator&, const Value& v, const CallArgs&) {
  return v.is_string() && find_test(v.as_string());
}

const std::unordered_map<std::string, TestFn>& test_table() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", t_defined},
      {"undefined", t_undefined},
      {"none", t_none},
      {"boolean", t_boolean},
      {"true", t_true},
      {"false", t_false},
      {"integer", t_integer},
      {"float", t_float},
      {"number", t_number},
      {"string", t_string},
      {"mapping", t_mapping},
      {"callable", t_callable},
      {"iterable", t_iterable},
      {"sequence", t_sequence},
      {"sameas", t_sameas},
      {"eq", t_eq},
      {"equalto", t_eq},
      {"==", t_eq},
      {"ne", t_ne},
      {"!=", t_ne},
      {"lt", t_lt},
      {"lessthan", t_lt},
      {"<", t_lt},
      {"gt", t_gt},
      {"greaterthan", t_gt},
      {">", t_gt},
      {"le", t_le},
      {"<=", t_le},
      {"ge", t_ge},
      {">=", t_ge},
      {"in", t_in},
      {"odd", t_odd},
      {"even", t_even},
      {"divisibleby", t_divisibleby},
      {"lower", t_lower},
      {"upper", t_upper},
      {"filter", t_filter},
      {"test", t_test},
  };
  return table;
}

}  // namespace

const TestFn* find_test(const std::string& name) {
  const auto& table = test_table();
  auto it = table.find(name);
  return it == table.end() ? nullptr : &it->second;
}

}  // namespace shardlm::tmpl
