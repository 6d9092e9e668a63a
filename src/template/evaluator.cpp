// Statement execution and expression evaluation. Every failure becomes a TemplateError carrying the
// line and column of the innermost expression or statement that failed.
#include "template/evaluator.h"

#include "template/filters.h"
#include "template/methods.h"
#include "template/operators.h"

namespace shardlm::tmpl {

const Value* Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent_.get()) {
    auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return &it->second;
  }
  return nullptr;
}

void Evaluator::check_size(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    eval_fail("output too large: more than {} bytes", limits_.max_output_bytes);
  }
}

void Evaluator::step() {
  if (++steps_ > limits_.max_steps) {
    eval_fail("template ran too long: more than {} steps (runaway loop?)", limits_.max_steps);
  }
}

std::string Evaluator::render(const Body& body, std::shared_ptr<Scope> globals) {
  std::string result;
  out_ = &result;
  exec_body(body, globals);
  out_ = nullptr;
  return result;
}

void Evaluator::emit(std::string_view text) {
  check_size(out_->size() + text.size());
  out_->append(text);
}

Evaluator::Flow Evaluator::exec_body(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const StmtPtr& stmt : body) {
    Flow flow;
    try {
      step();
      flow = exec(*stmt, scope);
    } catch (const EvalFailure& failure) {
      throw TemplateError(failure.what(), stmt->loc);
    }
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

Evaluator::Flow Evaluator::exec(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  switch (stmt.kind) {
    case StmtKind::Text:
      emit(stmt.text);
      return Flow::Normal;
    case StmtKind::Print:
      emit(eval(*stmt.expr, scope).str());
      return Flow::Normal;
    case StmtKind::If:
      return exec_if(stmt, scope);
    case StmtKind::For:
      return exec_for(stmt, scope);
    case StmtKind::Set:
      exec_set(stmt, scope);
      return Flow::Normal;
    case StmtKind::SetBlock:
      exec_set_block(stmt, scope);
      return Flow::Normal;
    case StmtKind::Macro:
      exec_macro(stmt, scope);
      return Flow::Normal;
    case StmtKind::CallBlock:
      exec_call_block(stmt, scope);
      return Flow::Normal;
    case StmtKind::FilterBlock:
      exec_filter_block(stmt, scope);
      return Flow::Normal;
    case StmtKind::With:
      return exec_with(stmt, scope);
    case StmtKind::Break:
      return Flow::Break;
    case StmtKind::Continue:
      return Flow::Continue;
    case StmtKind::Generation:
      return exec_body(stmt.body, scope);
  }
  return Flow::Normal;
}

Evaluator::Flow Evaluator::exec_if(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  if (eval(*stmt.expr, scope).truthy()) return exec_body(stmt.body, scope);
  return exec_body(stmt.otherwise, scope);
}

static Value make_loop_object(const ValueList& items, size_t i) {
  int64_t n = static_cast<int64_t>(items.size());
  int64_t index = static_cast<int64_t>(i);
  ValueDict loop;
  loop.set("index", Value::integer(index + 1));
  loop.set("index0", Value::integer(index));
  loop.set("revindex", Value::integer(n - index));
  loop.set("revindex0", Value::integer(n - index - 1));
  loop.set("first", Value::boolean(i == 0));
  loop.set("last", Value::boolean(index == n - 1));
  loop.set("length", Value::integer(n));
  loop.set("depth", Value::integer(1));
  loop.set("depth0", Value::integer(0));
  if (i > 0) loop.set("previtem", items[i - 1]);
  if (index + 1 < n) loop.set("nextitem", items[i + 1]);
  loop.set("cycle", Value::function("loop.cycle", [i](Evaluator&, const CallArgs& args) {
             if (args.positional.empty()) eval_fail("no items for cycling given");
             return args.positional[i % args.positional.size()];
           }));
  return Value::dict(std::move(loop));
}

Evaluator::Flow Evaluator::exec_for(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  if (stmt.recursive) throw TemplateError("recursive loops are not supported", stmt.loc);
  ValueList items = iterate(eval(*stmt.expr, scope));
  if (stmt.filter) {
    ValueList kept;
    for (const Value& item : items) {
      step();
      auto probe = std::make_shared<Scope>(scope);
      bind_targets(stmt.targets, item, *probe);
      if (eval(*stmt.filter, probe).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(stmt.otherwise, scope);
  for (size_t i = 0; i < items.size(); ++i) {
    step();
    auto iteration = std::make_shared<Scope>(scope);
    bind_targets(stmt.targets, items[i], *iteration);
    iteration->set("loop", make_loop_object(items, i));
    if (exec_body(stmt.body, iteration) == Flow::Break) break;
  }
  return Flow::Normal;
}

void Evaluator::bind_targets(const std::vector<std::string>& targets, const Value& value,
                             Scope& scope) {
  if (targets.size() == 1) {
    scope.set(targets[0], value);
    return;
  }
  ValueList parts = iterate(value);
  if (parts.size() != targets.size()) {
    eval_fail("{} values to unpack (expected {}, got {})",
              parts.size() > targets.size() ? "too many" : "not enough", targets.size(),
              parts.size());
  }
  for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], parts[i]);
}

void Evaluator::exec_set(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  Value value = eval(*stmt.expr, scope);
  if (stmt.attr.empty()) {
    bind_targets(stmt.targets, value, *scope);
    return;
  }
  const Value* ns = scope->lookup(stmt.targets[0]);
  if (!ns || !ns->is_namespace()) eval_fail("cannot assign attribute on non-namespace object");
  ns->namespace_attrs().set(stmt.attr, std::move(value));
}

std::string Evaluator::capture(const Body& body, const std::shared_ptr<Scope>& scope) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  try {
    exec_body(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

Value Evaluator::apply_filter_chain(const std::vector<ExprPtr>& filters, Value value,
                                    const std::shared_ptr<Scope>& scope) {
  for (const ExprPtr& f : filters) {
    CallArgs args = eval_args(*f, scope);
    try {
      value = apply_filter(f->name, value, args);
    } catch (const EvalFailure& failure) {
      throw TemplateError(failure.what(), f->loc);
    }
  }
  return value;
}

void Evaluator::exec_set_block(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  Value value = Value::string(capture(stmt.body, scope));
  scope->set(stmt.text, apply_filter_chain(stmt.filters, std::move(value), scope));
}

void Evaluator::exec_filter_block(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  Value value = Value::string(capture(stmt.body, scope));
  emit(apply_filter_chain(stmt.filters, std::move(value), scope).str());
}

Evaluator::Flow Evaluator::exec_with(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  auto inner = std::make_shared<Scope>(scope);
  for (size_t i = 0; i < stmt.targets.size(); ++i)
    inner->set(stmt.targets[i], eval(*stmt.values[i], scope));
  return exec_body(stmt.body, inner);
}

Value Evaluator::call(const Value& callee, const CallArgs& args) {
  if (callee.is_function()) return callee.as_function().call(*this, args);
  if (callee.is_undefined()) fail_undefined(callee);
  eval_fail("'{}' object is not callable", callee.type_name());
}

Value Evaluator::apply_filter(const std::string& name, const Value& subject, const CallArgs& args) {
  const FilterFn* f = find_filter(name);
  if (!f) eval_fail("no filter named '{}'", name);
  check_filter_args(name, args);
  return (*f)(*this, subject, args);
}

bool Evaluator::apply_test(const std::string& name, const Value& subject, const CallArgs& args) {
  const TestFn* t = find_test(name);
  if (!t) eval_fail("no test named '{}'", name);
  return (*t)(*this, subject, args);
}

}  // namespace shardlm::tmpl
