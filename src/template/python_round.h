// Rounding as Python does it: round(x, ndigits) on floats (correctly rounded, half to even on the
// exact binary value) and ints, and jinja2's round filter methods 'ceil' and 'floor'.
#pragma once

#include <cstdint>

#include "template/value.h"

namespace shardlm::tmpl {

// Python's round(x, ndigits) for a float: 2.675 -> 2.67 (its binary value is below 2.675).
double python_round_float(double x, int64_t ndigits);
// jinja2's round filter: round(value, precision) for 'common', else
// math.ceil/floor(value * 10**precision) / 10**precision. Throws EvalFailure as Python raises.
Value jinja_round(const Value& value, int64_t precision, const std::string& method);

}  // namespace shardlm::tmpl
