// Methods templates call on values, as Python defines them: str (strip, split, startswith,
// format, ...), dict (items, keys, values, get) and list (index, count). Mutating methods are
// refused as jinja2's ImmutableSandboxedEnvironment refuses them.
#pragma once

#include <string>

#include "template/value.h"

namespace shardlm::tmpl {

class Evaluator;

bool has_method(const Value& object, const std::string& name);
Value call_method(Evaluator& ev, const Value& object, const std::string& name,
                  const CallArgs& args);
Value bound_method(const Value& object, const std::string& name);

}  // namespace shardlm::tmpl
