// The global functions a chat template can call: range, namespace, dict, raise_exception and
// strftime_now (the last two are what transformers adds).
#pragma once

#include "template/evaluator.h"

namespace shardlm::tmpl {

void add_globals(Scope& scope);

}  // namespace shardlm::tmpl
