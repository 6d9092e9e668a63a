// Private to the template parser: the recursive-descent Parser class shared by parser.cpp
// (token helpers and statements) and parser_expressions.cpp (expressions).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "template/ast.h"
#include "template/lexer.h"
#include "template/template_error.h"

namespace shardlm::tmpl {

inline constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::string_view source) : lines_(source), tokens_(tokenize(source)) {}

  Body parse();

 private:
  // ---- token helpers ----
  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t n = 1) const { return tokens_[std::min(pos_ + n, tokens_.size() - 1)]; }
  SourceLoc loc() const { return lines_.locate(cur().offset); }
  SourceLoc loc_of(const Token& t) const { return lines_.locate(t.offset); }

  [[noreturn]] void error(const std::string& message) { throw TemplateError(message, loc()); }

  bool is_op(std::string_view op) const;
  bool is_name(std::string_view name) const;
  bool accept_op(std::string_view op);
  bool accept_name(std::string_view name);
  void expect_op(std::string_view op);
  std::string expect_name();
  void expect_block_end();

  static std::string describe(const Token& t);

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.error("template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  ExprPtr make(ExprKind kind, SourceLoc l) { return std::make_unique<Expr>(kind, l); }

  // ---- statements ----

  // Parses statements until a block whose tag is in end_tags (consumed up to the tag name).
  Body parse_body(std::initializer_list<std::string_view> end_tags, std::string& found);

  StmtPtr parse_print();

  StmtPtr parse_statement();

  StmtPtr parse_if(SourceLoc l);

  std::vector<std::string> parse_target_names();

  StmtPtr parse_for(SourceLoc l);

  StmtPtr parse_set(SourceLoc l);

  std::vector<MacroParam> parse_params();

  StmtPtr parse_macro(SourceLoc l);

  StmtPtr parse_call_block(SourceLoc l);

  StmtPtr parse_filter_block(SourceLoc l);

  StmtPtr parse_with(SourceLoc l);

  StmtPtr parse_simple_block(SourceLoc l, StmtKind kind, std::string_view end);

  // ---- expressions ----

  // A comma-separated list becomes a tuple: `{{ a, b }}`, `set x = 1, 2`.
  ExprPtr parse_tuple(bool with_condexpr);

  ExprPtr parse_expression();

  ExprPtr binary(std::string op, ExprPtr lhs, ExprPtr rhs, SourceLoc l);

  ExprPtr parse_or();

  ExprPtr parse_and();

  ExprPtr parse_not();

  // Comparisons chain as in Python: `a < b < c` means `a < b and b < c`.
  ExprPtr parse_compare();

  ExprPtr parse_math1();

  ExprPtr parse_concat();

  ExprPtr parse_math2();

  ExprPtr parse_pow();

  ExprPtr parse_unary(bool with_filter);

  ExprPtr literal(Value v, SourceLoc l);

  ExprPtr parse_primary();

  ExprPtr parse_name_primary(SourceLoc l);

  ExprPtr parse_paren(SourceLoc l);

  ExprPtr parse_list(SourceLoc l);

  ExprPtr parse_dict(SourceLoc l);

  ExprPtr parse_postfix(ExprPtr node);

  ExprPtr parse_filter_expr(ExprPtr node);

  ExprPtr parse_subscript(ExprPtr node);

  void parse_args(Expr& e);

  ExprPtr parse_call(ExprPtr callee);

  std::string parse_dotted_name();

  ExprPtr parse_filter(ExprPtr node);

  bool starts_test_argument() const;

  ExprPtr parse_test(ExprPtr node);

  LineIndex lines_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace shardlm::tmpl
