// Python's printf-style string formatting, `format % args`, for the `%` operator and the `format`
// filter.
#pragma once

#include <string>

#include "template/value.h"

namespace shardlm::tmpl {

// format % args: args is a tuple of positional arguments, a dict for "%(key)s", or one value.
// Throws EvalFailure as Python raises TypeError/ValueError.
std::string percent_format(const std::string& format, const Value& args);

}  // namespace shardlm::tmpl
