// Value: the dynamic type of the template language, modelled on the Python objects jinja2 sees
// (None, bool, int, float, str, list/tuple, dict, namespace, callables, and jinja2's Undefined).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace shardlm::tmpl {

class Value;
class Evaluator;

using ValueList = std::vector<Value>;

class ValueDict;
struct CallArgs;
struct Function;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Function };

  Value() : kind_(Kind::Undefined) {}
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double f);
  static Value string(std::string s);
  static Value list(ValueList items, bool is_tuple = false);
  // A one-way iterable (what select, map, items, reverse... return in jinja2): iterates like a
  // list, but is always true, has no len() and cannot be indexed, printed or serialised.
  static Value iterator(ValueList items);
  // A generator whose items failed to compute: jinja2's generators are lazy, so the error only
  // surfaces when something iterates it (list, join, for, ...), not in `if` or when printed.
  static Value failed_iterator(std::string error);
  static Value dict(ValueDict dict);
  static Value namespace_(ValueDict attrs);
  static Value function(std::string name, std::function<Value(Evaluator&, const CallArgs&)> fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const {
    return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool;
  }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_tuple() const { return kind_ == Kind::List && tuple_; }
  bool is_iterator() const { return kind_ == Kind::List && iterator_; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_namespace() const { return kind_ == Kind::Namespace; }
  bool is_function() const { return kind_ == Kind::Function; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::Bool ? (b_ ? 1 : 0) : i_; }
  double as_double() const;  // for Int, Float and Bool
  const std::string& as_string() const { return *s_; }
  const ValueList& as_list() const { return *list_; }
  const ValueDict& as_dict() const { return *dict_; }
  ValueDict& namespace_attrs() const { return *ns_; }  // namespaces are the one mutable object
  const Function& as_function() const { return *fn_; }
  const std::string& undefined_hint() const { return *s_; }
  // The deferred error of a failed_iterator, or nullptr.
  const std::string* iterator_error() const { return iterator_ && s_ ? s_.get() : nullptr; }

  bool truthy() const;                         // Python bool()
  std::string str() const;                     // Python str(), as jinja2 prints a value
  std::string repr() const;                    // Python repr()
  std::string type_name() const;               // Python type name, for error messages
  bool operator==(const Value& other) const;   // Python ==
  bool same_object(const Value& other) const;  // Python `is` (jinja2's sameas)

 private:
  Kind kind_;
  bool tuple_ = false;
  bool iterator_ = false;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<const ValueDict> dict_;
  std::shared_ptr<ValueDict> ns_;
  std::shared_ptr<const Function> fn_;
};

// An insertion-ordered dict like Python's. Keys are hashable values (str, int, float, bool, None,
// undefined and tuples of those); 1, 1.0 and True are the same key, as in Python, and the first
// key inserted is the one kept.
class ValueDict {
 public:
  using Item = std::pair<Value, Value>;

  const Value* find(std::string_view key) const;
  const Value* find(const Value& key) const;  // throws EvalFailure for an unhashable key
  void set(const std::string& key, Value value);
  void set(const Value& key, Value value);  // throws EvalFailure for an unhashable key
  size_t size() const { return items_.size(); }
  const std::vector<Item>& items() const { return items_; }

 private:
  void set_hashed(std::string hash, const Value& key, Value value);

  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;  // dict_hash_key(key) -> position in items_
};

// The identity of a dict key: equal for keys Python's dict treats as one (1, 1.0, True). Throws
// EvalFailure ("unhashable type: 'list'") for lists, dicts and other unhashable values.
std::string dict_hash_key(const Value& key);

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  const Value* kwarg(std::string_view name) const;
};

// A callable: a builtin global, a bound method, a macro or `caller`.
struct Function {
  std::string name;
  std::function<Value(Evaluator&, const CallArgs&)> call;
};

// Python's ordering (<) for numbers, strings and sequences; throws Error for other pairs.
bool value_less(const Value& a, const Value& b);

}  // namespace shardlm::tmpl
