// Expression parsing. Precedence, lowest first: conditional, or, and, not, comparison, + -, ~,
// * / // %, **, unary, postfix/filters/tests.
#include <charconv>
#include <cstdlib>

#include "template/parser_impl.h"

namespace shardlm::tmpl {

ExprPtr Parser::parse_tuple(bool with_condexpr) {
  SourceLoc l = loc();
  ExprPtr first = with_condexpr ? parse_expression() : parse_or();
  if (!is_op(",")) return first;
  auto tuple = make(ExprKind::Tuple, l);
  tuple->args.push_back(std::move(first));
  while (accept_op(",")) {
    if (cur().type == TokenType::BlockEnd || cur().type == TokenType::VarEnd) break;
    tuple->args.push_back(with_condexpr ? parse_expression() : parse_or());
  }
  return tuple;
}

ExprPtr Parser::parse_expression() {
  DepthGuard guard(*this);
  SourceLoc l = loc();
  ExprPtr expr = parse_or();
  while (accept_name("if")) {
    auto cond = make(ExprKind::Cond, l);
    cond->index = parse_or();
    cond->start = std::move(expr);
    if (accept_name("else")) cond->stop = parse_expression();
    expr = std::move(cond);
  }
  return expr;
}

ExprPtr Parser::binary(std::string op, ExprPtr lhs, ExprPtr rhs, SourceLoc l) {
  auto e = make(ExprKind::Binary, l);
  e->name = std::move(op);
  e->object = std::move(lhs);
  e->index = std::move(rhs);
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr lhs = parse_and();
  while (is_name("or")) {
    SourceLoc l = loc();
    ++pos_;
    lhs = binary("or", std::move(lhs), parse_and(), l);
  }
  return lhs;
}

ExprPtr Parser::parse_and() {
  ExprPtr lhs = parse_not();
  while (is_name("and")) {
    SourceLoc l = loc();
    ++pos_;
    lhs = binary("and", std::move(lhs), parse_not(), l);
  }
  return lhs;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    DepthGuard guard(*this);
    auto e = make(ExprKind::Unary, loc());
    ++pos_;
    e->name = "not";
    e->object = parse_not();
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  SourceLoc start = loc();
  ExprPtr lhs = parse_math1();
  ExprPtr chain;
  while (true) {
    std::string op;
    if (cur().type == TokenType::Operator &&
        (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
         cur().text == "<=" || cur().text == ">=")) {
      op = cur().text;
      ++pos_;
    } else if (is_name("in")) {
      op = "in";
      ++pos_;
    } else if (is_name("not") && peek().type == TokenType::Name && peek().text == "in") {
      op = "not in";
      pos_ += 2;
    } else {
      break;
    }
    if (!chain) {
      chain = make(ExprKind::Compare, start);
      chain->object = std::move(lhs);
    }
    chain->kwargs.emplace_back(op, parse_math1());
  }
  return chain ? std::move(chain) : std::move(lhs);
}

ExprPtr Parser::parse_math1() {
  ExprPtr lhs = parse_concat();
  while (is_op("+") || is_op("-")) {
    SourceLoc l = loc();
    std::string op = tokens_[pos_++].text;
    lhs = binary(op, std::move(lhs), parse_concat(), l);
  }
  return lhs;
}

ExprPtr Parser::parse_concat() {
  ExprPtr lhs = parse_math2();
  while (is_op("~")) {
    SourceLoc l = loc();
    ++pos_;
    lhs = binary("~", std::move(lhs), parse_math2(), l);
  }
  return lhs;
}

ExprPtr Parser::parse_math2() {
  ExprPtr lhs = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    SourceLoc l = loc();
    std::string op = tokens_[pos_++].text;
    lhs = binary(op, std::move(lhs), parse_pow(), l);
  }
  return lhs;
}

ExprPtr Parser::parse_pow() {
  ExprPtr lhs = parse_unary(true);
  while (is_op("**")) {
    SourceLoc l = loc();
    ++pos_;
    lhs = binary("**", std::move(lhs), parse_unary(true), l);
  }
  return lhs;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  DepthGuard guard(*this);
  SourceLoc l = loc();
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    node = make(ExprKind::Unary, l);
    node->name = tokens_[pos_++].text;
    node->object = parse_unary(false);
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::literal(Value v, SourceLoc l) {
  auto e = make(ExprKind::Literal, l);
  e->value = std::move(v);
  return e;
}

ExprPtr Parser::parse_primary() {
  SourceLoc l = loc();
  const Token& t = cur();
  switch (t.type) {
    case TokenType::Name:
      return parse_name_primary(l);
    case TokenType::String: {
      std::string s;
      while (cur().type == TokenType::String) s += tokens_[pos_++].text;
      return literal(Value::string(std::move(s)), l);
    }
    case TokenType::Integer: {
      ++pos_;
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
      if (ec != std::errc())
        error("integer literal does not fit in 64 bits (template integers are 64-bit)");
      return literal(Value::integer(v), l);
    }
    case TokenType::Float:
      ++pos_;
      return literal(Value::floating(std::strtod(t.text.c_str(), nullptr)), l);
    case TokenType::Operator:
      if (t.text == "(") return parse_paren(l);
      if (t.text == "[") return parse_list(l);
      if (t.text == "{") return parse_dict(l);
      break;
    default:
      break;
  }
  error(fmt::format("unexpected {}", describe(t)));
}

ExprPtr Parser::parse_name_primary(SourceLoc l) {
  std::string name = tokens_[pos_++].text;
  if (name == "true" || name == "True") return literal(Value::boolean(true), l);
  if (name == "false" || name == "False") return literal(Value::boolean(false), l);
  if (name == "none" || name == "None") return literal(Value::none(), l);
  auto e = make(ExprKind::Name, l);
  e->name = std::move(name);
  return e;
}

ExprPtr Parser::parse_paren(SourceLoc l) {
  ++pos_;
  if (accept_op(")")) return make(ExprKind::Tuple, l);
  ExprPtr first = parse_expression();
  if (accept_op(")")) return first;
  auto tuple = make(ExprKind::Tuple, l);
  tuple->args.push_back(std::move(first));
  while (accept_op(",")) {
    if (is_op(")")) break;
    tuple->args.push_back(parse_expression());
  }
  expect_op(")");
  return tuple;
}

ExprPtr Parser::parse_list(SourceLoc l) {
  ++pos_;
  auto list = make(ExprKind::List, l);
  while (!is_op("]")) {
    if (!list->args.empty()) expect_op(",");
    if (is_op("]")) break;
    list->args.push_back(parse_expression());
  }
  expect_op("]");
  return list;
}

ExprPtr Parser::parse_dict(SourceLoc l) {
  ++pos_;
  auto dict = make(ExprKind::Dict, l);
  while (!is_op("}")) {
    if (!dict->args.empty()) expect_op(",");
    if (is_op("}")) break;
    dict->args.push_back(parse_expression());
    expect_op(":");
    dict->args.push_back(parse_expression());
  }
  expect_op("}");
  return dict;
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (accept_op("|")) {
      node = parse_filter(std::move(node));
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  DepthGuard guard(*this);
  SourceLoc l = loc();
  if (accept_op(".")) {
    auto e = make(ExprKind::Attr, l);
    e->object = std::move(node);
    if (cur().type == TokenType::Integer) {
      e->kind = ExprKind::Item;
      e->index = literal(Value::integer(std::atoll(cur().text.c_str())), l);
      ++pos_;
    } else {
      e->name = expect_name();
    }
    return e;
  }
  expect_op("[");
  ExprPtr start;
  if (!is_op(":")) start = parse_expression();
  if (accept_op("]")) {
    auto e = make(ExprKind::Item, l);
    e->object = std::move(node);
    e->index = std::move(start);
    return e;
  }
  auto e = make(ExprKind::Slice, l);
  e->object = std::move(node);
  e->start = std::move(start);
  expect_op(":");
  if (!is_op(":") && !is_op("]")) e->stop = parse_expression();
  if (accept_op(":") && !is_op("]")) e->step = parse_expression();
  expect_op("]");
  return e;
}

void Parser::parse_args(Expr& e) {
  expect_op("(");
  while (!is_op(")")) {
    if (!e.args.empty() || !e.kwargs.empty()) expect_op(",");
    if (is_op(")")) break;
    if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().text == "=") {
      std::string key = tokens_[pos_].text;
      pos_ += 2;
      e.kwargs.emplace_back(std::move(key), parse_expression());
    } else {
      if (!e.kwargs.empty()) error("positional argument follows keyword argument");
      e.args.push_back(parse_expression());
    }
  }
  expect_op(")");
}

ExprPtr Parser::parse_call(ExprPtr callee) {
  DepthGuard guard(*this);
  auto e = make(ExprKind::Call, loc());
  e->object = std::move(callee);
  parse_args(*e);
  return e;
}

std::string Parser::parse_dotted_name() {
  std::string name = expect_name();
  while (is_op(".") && peek().type == TokenType::Name) {
    pos_ += 1;
    name += "." + expect_name();
  }
  return name;
}

ExprPtr Parser::parse_filter(ExprPtr node) {
  DepthGuard guard(*this);
  auto e = make(ExprKind::Filter, loc());
  e->object = std::move(node);
  e->name = parse_dotted_name();
  if (is_op("(")) parse_args(*e);
  return e;
}

bool Parser::starts_test_argument() const {
  const Token& t = cur();
  if (t.type == TokenType::Name) return t.text != "else" && t.text != "or" && t.text != "and";
  if (t.type == TokenType::String || t.type == TokenType::Integer || t.type == TokenType::Float)
    return true;
  return t.type == TokenType::Operator && (t.text == "(" || t.text == "[" || t.text == "{");
}

ExprPtr Parser::parse_test(ExprPtr node) {
  DepthGuard guard(*this);
  auto e = make(ExprKind::Test, loc());
  ++pos_;  // "is"
  e->object = std::move(node);
  e->negated = accept_name("not");
  e->name = parse_dotted_name();
  if (is_op("(")) {
    parse_args(*e);
  } else if (starts_test_argument()) {
    if (is_name("is")) error("test argument cannot be another test");
    e->args.push_back(parse_postfix(parse_primary()));
  }
  return e;
}

}  // namespace shardlm::tmpl
