// Python's text forms of values: float repr, string repr, and json.dumps as transformers' tojson
// calls it (ensure_ascii, indent, separators, sort_keys).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "template/value.h"

namespace shardlm::tmpl {

std::string python_float_repr(double value);
std::string python_string_repr(std::string_view s);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // None, or the indent unit (an int n means n spaces)
  std::optional<std::string> item_separator;
  std::optional<std::string> key_separator;
  bool sort_keys = false;
};

// json.dumps(value, ...). Throws EvalFailure for values JSON cannot hold (undefined, callables).
std::string python_json_dumps(const Value& value, const JsonDumpOptions& options);

}  // namespace shardlm::tmpl
