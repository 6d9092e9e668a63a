// The operators of the expression language with Python semantics: arithmetic, concatenation,
// membership, attribute and item access, slicing. Failures throw EvalFailure.
#pragma once

#include <optional>
#include <string>

#include "template/value.h"

namespace shardlm::tmpl {

class Evaluator;

Value binary_op(Evaluator& ev, const std::string& op, const Value& lhs, const Value& rhs);
bool contains(const Value& container, const Value& item);  // Python `item in container`
Value negate(const Value& v);

Value get_attr(const Value& object,
               const std::string& name);                // jinja2 getattr: attribute, then item
Value get_item(const Value& object, const Value& key);  // jinja2 getitem: item, then attribute
Value slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// Iterates like Python's iter(): lists, tuples, dict keys, string characters; undefined is empty.
ValueList iterate(const Value& v);
// Python len(); throws for values without a length.
int64_t length_of(const Value& v);

[[noreturn]] void fail_undefined(const Value& v);
// Template integers are 64-bit; a result Python would compute as a bigger int is this error
// rather than a wrong number.
[[noreturn]] void fail_int_overflow();  // raises the undefined value's UndefinedError

}  // namespace shardlm::tmpl
