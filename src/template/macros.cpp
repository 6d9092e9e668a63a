// Macros and call blocks: defining a macro, binding a call's arguments as jinja2's Macro.__call__
// does (positional, then keyword, defaults, `caller`, and `varargs`/`kwargs` for macros whose body
// reads them), and running the body.
#include <algorithm>
#include <optional>

#include "template/evaluator.h"

namespace shardlm::tmpl {

// Macros hold their defining scope weakly: the scope holds the macro, so a strong reference would
// be a cycle. A macro outliving its scope (stored into a namespace, say) reports an error.
Value Evaluator::make_macro(const Stmt& stmt, std::shared_ptr<Scope> defining_scope,
                            std::string name) {
  std::weak_ptr<Scope> weak = defining_scope;
  const Stmt* macro = &stmt;
  return Value::function(name, [macro, weak, name](Evaluator& ev, const CallArgs& args) {
    std::shared_ptr<Scope> scope = weak.lock();
    if (!scope) eval_fail("macro '{}' called outside the scope it was defined in", name);
    return ev.call_macro(*macro, scope, name, args);
  });
}

void Evaluator::exec_macro(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  scope->set(stmt.text, make_macro(stmt, scope, stmt.text));
}

namespace {

// Removes and returns the keyword argument `key`, if given.
std::optional<Value> take_keyword(std::vector<std::pair<std::string, Value>>& keywords,
                                  const std::string& key) {
  for (auto it = keywords.begin(); it != keywords.end(); ++it) {
    if (it->first != key) continue;
    Value v = std::move(it->second);
    keywords.erase(it);
    return v;
  }
  return std::nullopt;
}

bool has_param(const Stmt& stmt, const std::string& name) {
  for (const MacroParam& p : stmt.params) {
    if (p.name == name) return true;
  }
  return false;
}

}  // namespace

// jinja2's Macro.__call__: positional arguments fill the first parameters; if some are left,
// keywords fill them by name; then `caller`; leftover keywords go to `kwargs` (or fail); leftover
// positional arguments go to `varargs` (or fail).
void Evaluator::bind_macro_args(const Stmt& stmt, const std::string& name, const CallArgs& args,
                                const std::shared_ptr<Scope>& local) {
  const size_t n = stmt.params.size();
  const size_t npos = std::min(args.positional.size(), n);
  std::vector<std::pair<std::string, Value>> keywords = args.keyword;
  std::vector<std::optional<Value>> bound(n);
  for (size_t i = 0; i < npos; ++i) bound[i] = args.positional[i];
  bool found_caller = has_param(stmt, "caller");
  for (size_t i = npos; i < n; ++i) bound[i] = take_keyword(keywords, stmt.params[i].name);
  if (stmt.accesses_caller && !found_caller) {
    std::optional<Value> caller = take_keyword(keywords, "caller");
    local->set("caller",
               caller && !caller->is_none() ? *caller : Value::undefined("No caller defined"));
  }
  if (stmt.catch_kwargs) {
    ValueDict extra;
    for (auto& [key, value] : keywords) extra.set(key, std::move(value));
    local->set("kwargs", Value::dict(std::move(extra)));
  } else if (!keywords.empty()) {
    if (take_keyword(keywords, "caller"))
      eval_fail(
          "macro '{}' was invoked with two values for the special caller argument. This is "
          "most likely a bug.",
          name);
    eval_fail("macro '{}' takes no keyword argument '{}'", name, keywords.front().first);
  }
  if (stmt.catch_varargs) {
    ValueList extra(args.positional.begin() + static_cast<std::ptrdiff_t>(npos),
                    args.positional.end());
    local->set("varargs", Value::list(std::move(extra), true));
  } else if (args.positional.size() > n) {
    eval_fail("macro '{}' takes not more than {} argument(s)", name, n);
  }
  for (size_t i = 0; i < n; ++i) {
    const MacroParam& p = stmt.params[i];
    if (bound[i]) {
      local->set(p.name, *bound[i]);
    } else if (p.default_value) {
      local->set(p.name, eval(*p.default_value, local));
    } else {
      local->set(p.name, Value::undefined(fmt::format("parameter '{}' was not provided", p.name)));
    }
  }
}

Value Evaluator::call_macro(const Stmt& stmt, const std::shared_ptr<Scope>& defining_scope,
                            const std::string& name, const CallArgs& args) {
  auto local = std::make_shared<Scope>(defining_scope);
  bind_macro_args(stmt, name, args, local);
  if (call_depth_ >= limits_.max_call_depth) {
    eval_fail("macro calls nested too deeply (more than {})", limits_.max_call_depth);
  }
  ++call_depth_;
  std::string out;
  try {
    out = capture(stmt.body, local);
  } catch (...) {
    --call_depth_;
    throw;
  }
  --call_depth_;
  return Value::string(std::move(out));
}

void Evaluator::exec_call_block(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  const Expr& call_expr = *stmt.expr;
  Value callee = eval(*call_expr.object, scope);
  CallArgs args = eval_args(call_expr, scope);
  args.keyword.emplace_back("caller", make_macro(stmt, scope, "caller"));
  Value result;
  try {
    result = call(callee, args);
  } catch (const EvalFailure& failure) {
    throw TemplateError(failure.what(), call_expr.loc);
  }
  emit(result.str());
}

}  // namespace shardlm::tmpl
