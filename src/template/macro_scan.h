// Finds which of jinja2's special macro names (varargs, kwargs, caller) a macro's body reads, the
// way jinja2's compiler decides whether a macro takes extra positional or keyword arguments.
#pragma once

#include "template/ast.h"

namespace shardlm::tmpl {

// Sets stmt.catch_varargs, catch_kwargs and accesses_caller for a Macro or CallBlock statement.
// As in jinja2: a name counts when it is read anywhere in the defaults or body (nested macros
// included) before anything assigns it, and it is not one of the macro's own parameters.
void scan_macro_specials(Stmt& stmt);

}  // namespace shardlm::tmpl
