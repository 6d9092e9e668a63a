// Parser: turns the token stream into a syntax tree, following jinja2's grammar and operator
// precedence. Nesting is bounded so hostile templates cannot overflow the stack.
#pragma once

#include <string_view>

#include "template/ast.h"

namespace shardlm::tmpl {

// Throws TemplateError (with line and column) on any syntax error.
Body parse_template(std::string_view source);

}  // namespace shardlm::tmpl
