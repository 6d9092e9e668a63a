// Global functions: range (bounded like jinja2's sandbox), namespace, dict, raise_exception,
// strftime_now.
#include "template/globals.h"

#include <ctime>

#include "template/template_error.h"

namespace shardlm::tmpl {

namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2's sandbox MAX_RANGE

int64_t int_of(const Value& v) {
  if (!v.is_int() && !v.is_bool())
    eval_fail("'{}' object cannot be interpreted as an integer", v.type_name());
  return v.as_int();
}

Value g_range(Evaluator&, const CallArgs& args) {
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) eval_fail("range expected 1 to 3 arguments, got {}", p.size());
  int64_t start = 0, stop, step = 1;
  if (p.size() == 1) {
    stop = int_of(p[0]);
  } else {
    start = int_of(p[0]);
    stop = int_of(p[1]);
    if (p.size() == 3) step = int_of(p[2]);
  }
  if (step == 0) eval_fail("range() arg 3 must not be zero");
  ValueList out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) {
      eval_fail("range too big, maximum size for range is {}", kMaxRange);
    }
    out.push_back(Value::integer(i));
  }
  return Value::list(std::move(out));
}

ValueDict dict_from_args(const CallArgs& args, const char* fn) {
  ValueDict dict;
  if (args.positional.size() > 1) eval_fail("{} expected at most 1 positional argument", fn);
  if (!args.positional.empty()) {
    const Value& init = args.positional[0];
    if (!init.is_dict()) eval_fail("{}() argument must be a mapping", fn);
    for (const auto& [key, value] : init.as_dict().items()) dict.set(key, value);
  }
  for (const auto& [key, value] : args.keyword) dict.set(key, value);
  return dict;
}

Value g_namespace(Evaluator&, const CallArgs& args) {
  return Value::namespace_(dict_from_args(args, "namespace"));
}

Value g_dict(Evaluator&, const CallArgs& args) {
  return Value::dict(dict_from_args(args, "dict"));
}

Value g_raise_exception(Evaluator&, const CallArgs& args) {
  throw EvalFailure(args.positional.empty() ? std::string("raise_exception called")
                                            : args.positional[0].str());
}

Value g_strftime_now(Evaluator&, const CallArgs& args) {
  if (args.positional.empty() || !args.positional[0].is_string())
    eval_fail("strftime_now needs a format string");
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  size_t n = std::strftime(buf, sizeof(buf), args.positional[0].as_string().c_str(), &local);
  return Value::string(std::string(buf, n));
}

}  // namespace

void add_globals(Scope& scope) {
  scope.set("range", Value::function("range", g_range));
  scope.set("namespace", Value::function("namespace", g_namespace));
  scope.set("dict", Value::function("dict", g_dict));
  scope.set("raise_exception", Value::function("raise_exception", g_raise_exception));
  scope.set("strftime_now", Value::function("strftime_now", g_strftime_now));
}

}  // namespace shardlm::tmpl
