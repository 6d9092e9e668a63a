// Python semantics for the template's operators and for attribute/item access.
#include "template/operators.h"

#include <algorithm>
#include <cmath>

#include "template/evaluator.h"
#include "template/methods.h"
#include "template/percent_format.h"
#include "template/template_error.h"
#include "template/utf8.h"

namespace shardlm::tmpl {

void fail_undefined(const Value& v) {
  const std::string& hint = v.undefined_hint();
  throw EvalFailure(hint.empty() ? "value is undefined" : hint);
}

void fail_int_overflow() {
  eval_fail(
      "integer overflow: the result does not fit in 64 bits (Python integers are unbounded; "
      "template integers here are 64-bit)");
}

static Value missing(const Value& object, const std::string& name) {
  return Value::undefined(
      fmt::format("'{} object' has no attribute '{}'", object.type_name(), name));
}

static void type_error(const char* op, const Value& a, const Value& b) {
  eval_fail("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name());
}

// Applies a checked integer operation (one of the __builtin_*_overflow functions).
template <typename Op>
static Value checked(Op op, int64_t x, int64_t y) {
  int64_t r = 0;
  if (op(x, y, &r)) fail_int_overflow();
  return Value::integer(r);
}

static Value repeat(Evaluator& ev, const Value& seq, int64_t n) {
  const bool empty = seq.is_string() ? seq.as_string().empty() : seq.as_list().empty();
  // An empty sequence repeated any number of times is empty: no loop of 2**62 appends.
  if (n <= 0 || empty) return seq.is_string() ? Value::string("") : Value::list({}, seq.is_tuple());
  // The byte count is checked for overflow first: 3 items * 2**62 wraps around to a small number.
  uint64_t unit = seq.is_string() ? seq.as_string().size() : seq.as_list().size() * sizeof(Value);
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(unit, static_cast<uint64_t>(n), &bytes)) bytes = UINT64_MAX;
  ev.check_size(bytes);
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value::string(std::move(out));
  }
  ValueList out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
  return Value::list(std::move(out), seq.is_tuple());
}

static Value add(Evaluator& ev, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return Value::floating(a.as_double() + b.as_double());
    return checked([](int64_t x, int64_t y, int64_t* r) { return __builtin_add_overflow(x, y, r); },
                   a.as_int(), b.as_int());
  }
  if (a.is_string() && b.is_string()) {
    ev.check_size(a.as_string().size() + b.as_string().size());
    return Value::string(a.as_string() + b.as_string());
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple() && !a.is_iterator() &&
      !b.is_iterator()) {
    ValueList out = a.as_list();
    out.insert(out.end(), b.as_list().begin(), b.as_list().end());
    ev.check_size(out.size() * sizeof(Value));
    return Value::list(std::move(out), a.is_tuple());
  }
  if (a.is_string() && !b.is_undefined()) {
    eval_fail("can only concatenate str (not \"{}\") to str", b.type_name());
  }
  type_error("+", a, b);
  return {};
}

static double floor_mod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m == 0 ? std::copysign(0.0, b) : m;
}

static Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number()) type_error(op.c_str(), a, b);
  bool is_float = a.is_float() || b.is_float();
  if (op == "/") {
    if (b.as_double() == 0) eval_fail("division by zero");
    return Value::floating(a.as_double() / b.as_double());
  }
  if ((op == "//" || op == "%") && b.as_double() == 0) {
    eval_fail("{}", op == "//" ? "integer division or modulo by zero" : "modulo by zero");
  }
  if (is_float) {
    double x = a.as_double(), y = b.as_double();
    if (op == "-") return Value::floating(x - y);
    if (op == "*") return Value::floating(x * y);
    if (op == "//") return Value::floating(std::floor(x / y));
    if (op == "%") return Value::floating(floor_mod(x, y));
    if (op == "**") {
      if (x < 0 && y != std::floor(y))
        eval_fail("a negative number to a fractional power is complex (not supported here)");
      double r = std::pow(x, y);
      if (std::isinf(r) && std::isfinite(x) && std::isfinite(y))
        eval_fail("(34, 'Numerical result out of range')");  // Python's OverflowError
      return Value::floating(r);
    }
  }
  int64_t x = a.as_int(), y = b.as_int();
  if (op == "-")
    return checked([](int64_t p, int64_t q, int64_t* r) { return __builtin_sub_overflow(p, q, r); },
                   x, y);
  if (op == "*")
    return checked([](int64_t p, int64_t q, int64_t* r) { return __builtin_mul_overflow(p, q, r); },
                   x, y);
  if (op == "//" || op == "%") {
    if (x == INT64_MIN && y == -1) fail_int_overflow();
    int64_t q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) {
      --q;
      m += y;
    }
    return Value::integer(op == "//" ? q : m);
  }
  if (op == "**") {
    if (y < 0) return Value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
    int64_t result = 1;
    for (int64_t i = 0; i < y; ++i) {
      if (__builtin_mul_overflow(result, x, &result)) fail_int_overflow();
      if (result == 0 || result == 1) break;
    }
    return Value::integer(result);
  }
  type_error(op.c_str(), a, b);
  return {};
}

Value binary_op(Evaluator& ev, const std::string& op, const Value& lhs, const Value& rhs) {
  if (op == "~") {
    std::string s = lhs.str();
    s += rhs.str();
    ev.check_size(s.size());
    return Value::string(std::move(s));
  }
  if (op == "==") return Value::boolean(lhs == rhs);
  if (op == "!=") return Value::boolean(!(lhs == rhs));
  if (op == "in") return Value::boolean(contains(rhs, lhs));
  if (op == "not in") return Value::boolean(!contains(rhs, lhs));
  if (op == "%" && lhs.is_string()) {  // "%s" % undefined prints '' as Python does
    std::string s = percent_format(lhs.as_string(), rhs);
    ev.check_size(s.size());
    return Value::string(std::move(s));
  }
  if (lhs.is_undefined()) fail_undefined(lhs);
  if (rhs.is_undefined()) fail_undefined(rhs);
  if (op == "<") return Value::boolean(value_less(lhs, rhs));
  if (op == ">") return Value::boolean(value_less(rhs, lhs));
  if (op == "<=") return Value::boolean(!value_less(rhs, lhs));
  if (op == ">=") return Value::boolean(!value_less(lhs, rhs));
  if (op == "+") return add(ev, lhs, rhs);
  if (op == "*") {
    if ((lhs.is_string() || (lhs.is_list() && !lhs.is_iterator())) &&
        (rhs.is_int() || rhs.is_bool()))
      return repeat(ev, lhs, rhs.as_int());
    if ((rhs.is_string() || (rhs.is_list() && !rhs.is_iterator())) &&
        (lhs.is_int() || lhs.is_bool()))
      return repeat(ev, rhs, lhs.as_int());
  }
  if (op == "%" && lhs.is_string()) {
    std::string s = percent_format(lhs.as_string(), rhs);
    ev.check_size(s.size());
    return Value::string(std::move(s));
  }
  return arithmetic(op, lhs, rhs);
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::String:
      if (!item.is_string())
        eval_fail("'in <string>' requires string as left operand, not {}", item.type_name());
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      if (const std::string* error = container.iterator_error()) throw EvalFailure(*error);
      for (const Value& v : container.as_list()) {
        if (v == item) return true;
      }
      return false;
    case Value::Kind::Dict:
      return container.as_dict().find(item) != nullptr;
    case Value::Kind::Undefined:
      return false;
    default:
      eval_fail("argument of type '{}' is not iterable", container.type_name());
  }
}

Value negate(const Value& v) {
  if (v.is_float()) return Value::floating(-v.as_double());
  if (v.is_int() || v.is_bool()) {
    if (v.as_int() == INT64_MIN) fail_int_overflow();
    return Value::integer(-v.as_int());
  }
  if (v.is_undefined()) fail_undefined(v);
  eval_fail("bad operand type for unary -: '{}'", v.type_name());
}

Value get_attr(const Value& object, const std::string& name) {
  switch (object.kind()) {
    case Value::Kind::Undefined:
      fail_undefined(object);
    case Value::Kind::Namespace: {
      const Value* v = object.namespace_attrs().find(name);
      return v ? *v : missing(object, name);
    }
    case Value::Kind::Dict: {
      if (has_method(object, name)) return bound_method(object, name);
      const Value* v = object.as_dict().find(name);
      return v ? *v : missing(object, name);
    }
    default:
      if (has_method(object, name)) return bound_method(object, name);
      return missing(object, name);
  }
}

static bool normalize_index(int64_t& index, int64_t size) {
  if (index < 0) index += size;
  return index >= 0 && index < size;
}

// dict[key], where an unhashable key is a failed lookup (jinja2 catches the TypeError).
static const Value* find_key(const ValueDict& dict, const Value& key) {
  try {
    return dict.find(key);
  } catch (const EvalFailure&) {
    return nullptr;
  }
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) fail_undefined(object);
  if (object.is_iterator()) {
    return Value::undefined("'generator' object is not subscriptable");
  }
  bool int_key = key.is_int() || key.is_bool();
  if (object.is_list() && int_key) {
    int64_t i = key.as_int();
    if (normalize_index(i, static_cast<int64_t>(object.as_list().size())))
      return object.as_list()[i];
    return Value::undefined(
        fmt::format("'{} object' has no element {}", object.type_name(), key.repr()));
  }
  if (object.is_string() && int_key) {
    std::vector<char32_t> cps = utf8_decode(object.as_string());
    int64_t i = key.as_int();
    if (normalize_index(i, static_cast<int64_t>(cps.size())))
      return Value::string(utf8_encode(cps, i, i + 1));
    return Value::undefined(fmt::format("'str object' has no element {}", i));
  }
  if (object.is_dict()) {
    if (const Value* v = find_key(object.as_dict(), key)) return *v;
  }
  if (key.is_string()) {
    if (object.is_namespace()) {
      const Value* v = object.namespace_attrs().find(key.as_string());
      if (v) return *v;
    }
    if (has_method(object, key.as_string())) return bound_method(object, key.as_string());
    return missing(object, key.as_string());
  }
  return Value::undefined(
      fmt::format("'{} object' has no element {}", object.type_name(), key.repr()));
}

// Python slice index resolution for a sequence of `size` elements.
static void slice_indices(const Value& start, const Value& stop, const Value& step, int64_t size,
                          int64_t& lo, int64_t& hi, int64_t& stride) {
  auto check = [](const Value& v) {
    if (!v.is_none() && !v.is_int() && !v.is_bool()) {
      eval_fail("slice indices must be integers or None or have an __index__ method");
    }
  };
  check(start);
  check(stop);
  check(step);
  stride = step.is_none() ? 1 : step.as_int();
  if (stride == 0) eval_fail("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t def) {
    if (v.is_none()) return def;
    int64_t i = v.as_int();
    if (i < 0) i += size;
    if (stride > 0) return std::clamp<int64_t>(i, 0, size);
    return std::clamp<int64_t>(i, -1, size - 1);
  };
  lo = clamp(start, stride > 0 ? 0 : size - 1);
  hi = clamp(stop, stride > 0 ? size : -1);
}

template <typename Seq, typename Out>
static void take_slice(const Seq& seq, int64_t lo, int64_t hi, int64_t stride, Out& out) {
  if (stride > 0) {
    for (int64_t i = lo; i < hi; i += stride) out.push_back(seq[i]);
  } else {
    for (int64_t i = lo; i > hi; i += stride) out.push_back(seq[i]);
  }
}

Value slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (object.is_undefined()) fail_undefined(object);
  int64_t lo, hi, stride;
  if (object.is_list() && !object.is_iterator()) {
    const ValueList& items = object.as_list();
    slice_indices(start, stop, step, static_cast<int64_t>(items.size()), lo, hi, stride);
    ValueList out;
    take_slice(items, lo, hi, stride, out);
    return Value::list(std::move(out), object.is_tuple());
  }
  if (object.is_string()) {
    std::vector<char32_t> cps = utf8_decode(object.as_string());
    slice_indices(start, stop, step, static_cast<int64_t>(cps.size()), lo, hi, stride);
    std::vector<char32_t> out;
    take_slice(cps, lo, hi, stride, out);
    return Value::string(utf8_encode(out, 0, out.size()));
  }
  eval_fail("'{}' object is not subscriptable", object.type_name());
}

ValueList iterate(const Value& v) {
  if (const std::string* error = v.iterator_error()) throw EvalFailure(*error);
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return {};
    case Value::Kind::List:
      return v.as_list();
    case Value::Kind::Dict: {
      ValueList keys;
      for (const auto& [key, value] : v.as_dict().items()) keys.push_back(key);
      return keys;
    }
    case Value::Kind::String: {
      ValueList chars;
      for (char32_t cp : utf8_decode(v.as_string())) {
        std::string s;
        utf8_append(s, cp);
        chars.push_back(Value::string(std::move(s)));
      }
      return chars;
    }
    default:
      eval_fail("'{}' object is not iterable", v.type_name());
  }
}

int64_t length_of(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return 0;
    case Value::Kind::String:
      return static_cast<int64_t>(utf8_length(v.as_string()));
    case Value::Kind::List:
      if (v.is_iterator()) eval_fail("object of type 'generator' has no len()");
      return static_cast<int64_t>(v.as_list().size());
    case Value::Kind::Dict:
      return static_cast<int64_t>(v.as_dict().size());
    default:
      eval_fail("object of type '{}' has no len()", v.type_name());
  }
}

}  // namespace shardlm::tmpl
