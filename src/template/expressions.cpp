// Expression evaluation: names, literals, operators, attribute/item access, calls, filters, tests.
#include "template/evaluator.h"
#include "template/methods.h"
#include "template/operators.h"

namespace shardlm::tmpl {

Value Evaluator::eval(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  try {
    step();
    return eval_inner(expr, scope);
  } catch (const EvalFailure& failure) {
    throw TemplateError(failure.what(), expr.loc);
  }
}

CallArgs Evaluator::eval_args(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  CallArgs args;
  for (const ExprPtr& a : expr.args) args.positional.push_back(eval(*a, scope));
  for (const auto& [key, value] : expr.kwargs) args.keyword.emplace_back(key, eval(*value, scope));
  return args;
}

Value Evaluator::eval_collection(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  if (expr.kind == ExprKind::Dict) {
    ValueDict dict;
    for (size_t i = 0; i + 1 < expr.args.size(); i += 2) {
      Value key = eval(*expr.args[i], scope);
      dict.set(key, eval(*expr.args[i + 1], scope));
    }
    return Value::dict(std::move(dict));
  }
  ValueList items;
  for (const ExprPtr& e : expr.args) items.push_back(eval(*e, scope));
  return Value::list(std::move(items), expr.kind == ExprKind::Tuple);
}

Value Evaluator::eval_call(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  const Expr& callee = *expr.object;
  if (callee.kind == ExprKind::Attr) {
    Value object = eval(*callee.object, scope);
    if (has_method(object, callee.name)) {
      return call_method(*this, object, callee.name, eval_args(expr, scope));
    }
    Value fn = get_attr(object, callee.name);
    return call(fn, eval_args(expr, scope));
  }
  Value fn = eval(callee, scope);
  return call(fn, eval_args(expr, scope));
}

Value Evaluator::eval_binary(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  Value lhs = eval(*expr.object, scope);
  if (expr.name == "and") return lhs.truthy() ? eval(*expr.index, scope) : lhs;
  if (expr.name == "or") return lhs.truthy() ? lhs : eval(*expr.index, scope);
  return binary_op(*this, expr.name, lhs, eval(*expr.index, scope));
}

static Value eval_unary(const std::string& op, const Value& operand) {
  if (op == "not") return Value::boolean(!operand.truthy());
  if (op == "-") return negate(operand);
  if (operand.is_undefined()) fail_undefined(operand);
  if (!operand.is_number()) eval_fail("bad operand type for unary +: '{}'", operand.type_name());
  return operand.is_bool() ? Value::integer(operand.as_int()) : operand;
}

Value Evaluator::eval_inner(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  switch (expr.kind) {
    case ExprKind::Literal:
      return expr.value;
    case ExprKind::Name: {
      const Value* v = scope->lookup(expr.name);
      return v ? *v : Value::undefined(fmt::format("'{}' is undefined", expr.name));
    }
    case ExprKind::List:
    case ExprKind::Tuple:
    case ExprKind::Dict:
      return eval_collection(expr, scope);
    case ExprKind::Attr:
      return get_attr(eval(*expr.object, scope), expr.name);
    case ExprKind::Item:
      return get_item(eval(*expr.object, scope), eval(*expr.index, scope));
    case ExprKind::Slice: {
      Value object = eval(*expr.object, scope);
      auto part = [&](const ExprPtr& e) { return e ? eval(*e, scope) : Value::none(); };
      return slice(object, part(expr.start), part(expr.stop), part(expr.step));
    }
    case ExprKind::Call:
      return eval_call(expr, scope);
    case ExprKind::Filter: {
      Value subject = eval(*expr.object, scope);
      return apply_filter(expr.name, subject, eval_args(expr, scope));
    }
    case ExprKind::Test: {
      Value subject = eval(*expr.object, scope);
      return Value::boolean(apply_test(expr.name, subject, eval_args(expr, scope)) != expr.negated);
    }
    case ExprKind::Unary:
      return eval_unary(expr.name, eval(*expr.object, scope));
    case ExprKind::Binary:
      return eval_binary(expr, scope);
    case ExprKind::Compare: {
      Value lhs = eval(*expr.object, scope);
      for (const auto& [op, operand] : expr.kwargs) {
        Value rhs = eval(*operand, scope);
        if (!binary_op(*this, op, lhs, rhs).truthy()) return Value::boolean(false);
        lhs = std::move(rhs);
      }
      return Value::boolean(true);
    }
    case ExprKind::Cond:
      if (eval(*expr.index, scope).truthy()) return eval(*expr.start, scope);
      return expr.stop ? eval(*expr.stop, scope)
                       : Value::undefined("conditional expression had no else branch");
  }
  return {};
}

}  // namespace shardlm::tmpl
