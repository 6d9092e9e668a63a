// Python's round() and jinja2's round filter. Decimal rounding works on the exact decimal expansion
// of the double (printf prints it exactly), so ties are ties of the true binary value, as in
// CPython's dtoa-based float round.
#include "template/python_round.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "template/operators.h"
#include "template/template_error.h"

namespace shardlm::tmpl {

namespace {

// Adds one to a string of decimal digits ("199" -> "200", "99" -> "100").
std::string increment(std::string digits) {
  for (size_t i = digits.size(); i-- > 0;) {
    if (digits[i] != '9') {
      ++digits[i];
      return digits;
    }
    digits[i] = '0';
  }
  return "1" + digits;
}

// Whether the digits dropped after a kept part whose last digit is `last` round it up (half even).
bool rounds_up(const std::string& dropped, char last) {
  if (dropped.empty() || dropped[0] < '5') return false;
  if (dropped[0] > '5') return true;
  if (dropped.find_first_not_of('0', 1) != std::string::npos) return true;
  return (last - '0') % 2 == 1;
}

// The exact decimal expansion of |x| as all digits plus the count of integer digits.
void exact_digits(double x, std::string& digits, size_t& int_digits) {
  std::vector<char> buf(1500);
  snprintf(buf.data(), buf.size(), "%.1100f", std::fabs(x));
  std::string text = buf.data();
  size_t dot = text.find('.');
  int_digits = dot;
  digits = text.substr(0, dot) + text.substr(dot + 1);
}

constexpr int64_t kNdigitsMax = 323;   // CPython: beyond this every double is already exact
constexpr int64_t kNdigitsMin = -308;  // CPython: below this everything rounds to zero

// ints: round half to even to a multiple of 10**-ndigits (ndigits < 0).
Value round_int(int64_t n, int64_t ndigits) {
  if (ndigits >= 0) return Value::integer(n);
  if (ndigits < -19) return Value::integer(0);
  __int128 unit = 1;
  for (int64_t i = 0; i < -ndigits; ++i) unit *= 10;
  __int128 value = n;
  __int128 q = value / unit, r = value % unit;
  if (r < 0) {
    r += unit;
    --q;
  }
  if (2 * r > unit || (2 * r == unit && q % 2 != 0)) ++q;
  __int128 result = q * unit;
  if (result > INT64_MAX || result < INT64_MIN) fail_int_overflow();
  return Value::integer(static_cast<int64_t>(result));
}

// A double holding an integer, divided by 10**p (p >= 0) with one correct rounding, as Python's
// int / int true division does.
double divide_by_power_of_ten(double integral, int64_t p) {
  std::vector<char> buf(400);
  snprintf(buf.data(), buf.size(), "%.0fe-%lld", integral, static_cast<long long>(p));
  return std::strtod(buf.data(), nullptr);
}

double checked_floor_ceil(double x, bool ceil) {
  if (std::isnan(x)) eval_fail("cannot convert float NaN to integer");
  if (std::isinf(x)) eval_fail("cannot convert float infinity to integer");
  double r = ceil ? std::ceil(x) : std::floor(x);
  return r == 0 ? 0.0 : r;  // Python's math.ceil/floor give an int, which has no -0
}

// math.ceil/floor(value * 10**precision) / 10**precision with Python's int and float mixing.
Value ceil_floor(const Value& value, int64_t precision, bool ceil) {
  if (precision < 0) {
    double factor = std::pow(10.0, static_cast<double>(precision));
    return Value::floating(checked_floor_ceil(value.as_double() * factor, ceil) / factor);
  }
  if (!value.is_float()) return Value::floating(value.as_double());  // exact in Python
  if (precision > 308) eval_fail("int too large to convert to float");
  double factor = std::strtod(("1e" + std::to_string(precision)).c_str(), nullptr);
  double integral = checked_floor_ceil(value.as_double() * factor, ceil);
  return Value::floating(divide_by_power_of_ten(integral, precision));
}

}  // namespace

double python_round_float(double x, int64_t ndigits) {
  if (!std::isfinite(x) || x == 0 || ndigits > kNdigitsMax) return x;
  if (ndigits < kNdigitsMin) return 0.0 * x;
  std::string digits;
  size_t int_digits;
  exact_digits(x, digits, int_digits);
  int64_t keep = static_cast<int64_t>(int_digits) + ndigits;  // digits kept before the cut
  if (keep < 0) return std::copysign(0.0, x);
  if (keep >= static_cast<int64_t>(digits.size())) return x;
  std::string kept = digits.substr(0, static_cast<size_t>(keep));
  if (rounds_up(digits.substr(static_cast<size_t>(keep)), kept.empty() ? '0' : kept.back()))
    kept = increment(kept.empty() ? "0" : kept);
  if (kept.empty()) kept = "0";
  std::string text = kept + "e" + std::to_string(-ndigits);
  return std::copysign(std::strtod(text.c_str(), nullptr), x);
}

Value jinja_round(const Value& value, int64_t precision, const std::string& method) {
  if (method != "common" && method != "ceil" && method != "floor")
    eval_fail("method must be common, ceil or floor");
  if (!value.is_number()) {
    if (value.is_undefined()) fail_undefined(value);
    eval_fail("type {} doesn't define __round__ method", value.type_name());
  }
  if (method == "common") {
    if (!value.is_float()) return round_int(value.as_int(), precision);
    return Value::floating(python_round_float(value.as_double(), precision));
  }
  return ceil_floor(value, precision, method == "ceil");
}

}  // namespace shardlm::tmpl
