// Value construction and the Python semantics every part of the evaluator shares: truthiness,
// str()/repr(), equality and ordering.
#include "template/value.h"

#include <algorithm>
#include <cmath>

#include "template/python_format.h"
#include "template/template_error.h"

namespace shardlm::tmpl {

static std::string string_hash_key(std::string_view s) {
  std::string key = "s";
  key += s;
  return key;
}

static std::string number_hash_key(const Value& key) {
  if (!key.is_float()) return "i" + std::to_string(key.as_int());
  double f = key.as_double();
  // An integral float is the same key as the int of that value (hash(1.0) == hash(1)).
  if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9.2e18)
    return "i" + std::to_string(static_cast<int64_t>(f));
  return "f" + python_float_repr(f);
}

std::string dict_hash_key(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::String:
      return string_hash_key(key.as_string());
    case Value::Kind::Bool:
    case Value::Kind::Int:
    case Value::Kind::Float:
      return number_hash_key(key);
    case Value::Kind::None:
      return "n";
    case Value::Kind::Undefined:
      return "u";
    case Value::Kind::List:
      if (key.is_tuple()) {
        std::string out = "t";
        for (const Value& item : key.as_list()) {
          std::string part = dict_hash_key(item);
          out += std::to_string(part.size()) + ":" + part;
        }
        return out;
      }
      break;
    default:
      break;
  }
  eval_fail("unhashable type: '{}'", key.type_name());
}

const Value* ValueDict::find(std::string_view key) const {
  auto it = index_.find(string_hash_key(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Value* ValueDict::find(const Value& key) const {
  auto it = index_.find(dict_hash_key(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

void ValueDict::set(const std::string& key, Value value) {
  set_hashed(string_hash_key(key), Value::string(key), std::move(value));
}

void ValueDict::set(const Value& key, Value value) {
  set_hashed(dict_hash_key(key), key, std::move(value));
}

void ValueDict::set_hashed(std::string hash, const Value& key, Value value) {
  auto it = index_.find(hash);
  if (it != index_.end()) {
    items_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(std::move(hash), items_.size());
  items_.emplace_back(key, std::move(value));
}

const Value* CallArgs::kwarg(std::string_view name) const {
  for (const auto& [key, value] : keyword) {
    if (key == name) return &value;
  }
  return nullptr;
}

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::Int;
  v.i_ = i;
  return v;
}

Value Value::floating(double f) {
  Value v;
  v.kind_ = Kind::Float;
  v.f_ = f;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::list(ValueList items, bool is_tuple) {
  Value v;
  v.kind_ = Kind::List;
  v.tuple_ = is_tuple;
  v.list_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}

Value Value::iterator(ValueList items) {
  Value v = list(std::move(items));
  v.iterator_ = true;
  return v;
}

Value Value::failed_iterator(std::string error) {
  Value v = iterator({});
  v.s_ = std::make_shared<const std::string>(std::move(error));
  return v;
}

Value Value::dict(ValueDict dict) {
  Value v;
  v.kind_ = Kind::Dict;
  v.dict_ = std::make_shared<const ValueDict>(std::move(dict));
  return v;
}

Value Value::namespace_(ValueDict attrs) {
  Value v;
  v.kind_ = Kind::Namespace;
  v.ns_ = std::make_shared<ValueDict>(std::move(attrs));
  return v;
}

Value Value::function(std::string name, std::function<Value(Evaluator&, const CallArgs&)> fn) {
  Value v;
  v.kind_ = Kind::Function;
  v.fn_ = std::make_shared<const Function>(Function{std::move(name), std::move(fn)});
  return v;
}

double Value::as_double() const {
  switch (kind_) {
    case Kind::Float:
      return f_;
    case Kind::Int:
      return static_cast<double>(i_);
    case Kind::Bool:
      return b_ ? 1.0 : 0.0;
    default:
      return 0.0;
  }
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
      return b_;
    case Kind::Int:
      return i_ != 0;
    case Kind::Float:
      return f_ != 0.0;
    case Kind::String:
      return !s_->empty();
    case Kind::List:
      return iterator_ || !list_->empty();
    case Kind::Dict:
      return dict_->size() != 0;
    case Kind::Namespace:
    case Kind::Function:
      return true;
  }
  return false;
}

std::string Value::str() const {
  switch (kind_) {
    case Kind::Undefined:
      return "";
    case Kind::String:
      return *s_;
    default:
      return repr();
  }
}

static std::string repr_sequence(const ValueList& items, bool tuple) {
  std::string out = tuple ? "(" : "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    out += items[i].repr();
  }
  if (tuple && items.size() == 1) out += ",";
  out += tuple ? ")" : "]";
  return out;
}

static std::string repr_dict(const ValueDict& dict) {
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : dict.items()) {
    if (!first) out += ", ";
    first = false;
    out += key.repr() + ": " + value.repr();
  }
  return out + "}";
}

std::string Value::repr() const {
  if (is_iterator()) return "<generator object>";
  switch (kind_) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "None";
    case Kind::Bool:
      return b_ ? "True" : "False";
    case Kind::Int:
      return std::to_string(i_);
    case Kind::Float:
      return python_float_repr(f_);
    case Kind::String:
      return python_string_repr(*s_);
    case Kind::List:
      return repr_sequence(*list_, tuple_);
    case Kind::Dict:
      return repr_dict(*dict_);
    case Kind::Namespace:
      return "<Namespace " + repr_dict(*ns_) + ">";
    case Kind::Function:
      return "<function " + fn_->name + ">";
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind_) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::List:
      return iterator_ ? "generator" : tuple_ ? "tuple" : "list";
    case Kind::Dict:
      return "dict";
    case Kind::Namespace:
      return "Namespace";
    case Kind::Function:
      return "function";
  }
  return "object";
}

static bool sequences_equal(const ValueList& a, const ValueList& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i])) return false;
  }
  return true;
}

static bool dicts_equal(const ValueDict& a, const ValueDict& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, value] : a.items()) {
    const Value* other = b.find(key);
    if (!other || !(value == *other)) return false;
  }
  return true;
}

bool Value::operator==(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (kind_ != Kind::Float && other.kind_ != Kind::Float) return as_int() == other.as_int();
    return as_double() == other.as_double();
  }
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::Undefined:
    case Kind::None:
      return true;
    case Kind::String:
      return *s_ == *other.s_;
    case Kind::List:
      if (iterator_ || other.iterator_) return list_ == other.list_;
      return tuple_ == other.tuple_ && sequences_equal(*list_, *other.list_);
    case Kind::Dict:
      return dicts_equal(*dict_, *other.dict_);
    case Kind::Namespace:
      return ns_ == other.ns_;
    case Kind::Function:
      return fn_ == other.fn_;
    default:
      return false;
  }
}

bool Value::same_object(const Value& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::None:
    case Kind::Undefined:
      return true;
    case Kind::Bool:
      return b_ == other.b_;
    case Kind::Int:
      return i_ == other.i_;
    case Kind::Float:
      return f_ == other.f_;
    case Kind::String:
      return s_ == other.s_ || *s_ == *other.s_;
    case Kind::List:
      return list_ == other.list_;
    case Kind::Dict:
      return dict_ == other.dict_;
    case Kind::Namespace:
      return ns_ == other.ns_;
    case Kind::Function:
      return fn_ == other.fn_;
  }
  return false;
}

bool value_less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (!a.is_float() && !b.is_float()) return a.as_int() < b.as_int();
    return a.as_double() < b.as_double();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const ValueList& x = a.as_list();
    const ValueList& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!(x[i] == y[i])) return value_less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  eval_fail("'<' not supported between instances of '{}' and '{}'", a.type_name(), b.type_name());
}

}  // namespace shardlm::tmpl
