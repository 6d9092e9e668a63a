// Recursive-descent parser for the jinja2 subset chat templates use. Expression precedence, lowest
// first: conditional, or, and, not, comparison, + -, ~, * / // %, **, unary, postfix/filters/tests.
#include "template/parser.h"

#include <charconv>
#include <cstdlib>
#include <initializer_list>

#include "template/lexer.h"

namespace shardlm::tmpl {

namespace {

constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::string_view source) : lines_(source), tokens_(tokenize(source)) {}

  Body parse() {
    std::string end_tag;
    Body body = parse_body({}, end_tag);
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t n = 1) const { return tokens_[std::min(pos_ + n, tokens_.size() - 1)]; }
  SourceLoc loc() const { return lines_.locate(cur().offset); }
  SourceLoc loc_of(const Token& t) const { return lines_.locate(t.offset); }

  [[noreturn]] void error(const std::string& message) { throw TemplateError(message, loc()); }

  bool is_op(std::string_view op) const {
    return cur().type == TokenType::Operator && cur().text == op;
  }
  bool is_name(std::string_view name) const {
    return cur().type == TokenType::Name && cur().text == name;
  }
  bool accept_op(std::string_view op) {
    if (!is_op(op)) return false;
    ++pos_;
    return true;
  }
  bool accept_name(std::string_view name) {
    if (!is_name(name)) return false;
    ++pos_;
    return true;
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) error(fmt::format("expected '{}', got {}", op, describe(cur())));
  }
  std::string expect_name() {
    if (cur().type != TokenType::Name)
      error(fmt::format("expected a name, got {}", describe(cur())));
    return tokens_[pos_++].text;
  }
  void expect_block_end() {
    if (cur().type != TokenType::BlockEnd)
      error(fmt::format("expected end of block '%}}', got {}", describe(cur())));
    ++pos_;
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case TokenType::Text:
        return "template text";
      case TokenType::VarBegin:
        return "'{{'";
      case TokenType::VarEnd:
        return "'}}'";
      case TokenType::BlockBegin:
        return "'{%'";
      case TokenType::BlockEnd:
        return "'%}'";
      case TokenType::End:
        return "end of template";
      case TokenType::String:
        return "string literal";
      default:
        return "'" + t.text + "'";
    }
  }

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
  Body parse_body(std::initializer_list<std::string_view> end_tags, std::string& found) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::End) {
        if (end_tags.size() == 0) return body;
        error(
            fmt::format("unexpected end of template: missing '{{% {} %}}'", *(end_tags.end() - 1)));
      }
      if (t.type == TokenType::Text) {
        auto s = std::make_unique<Stmt>(StmtKind::Text, loc());
        s->text = t.text;
        body.push_back(std::move(s));
        ++pos_;
      } else if (t.type == TokenType::VarBegin) {
        body.push_back(parse_print());
      } else if (t.type == TokenType::BlockBegin) {
        const Token& tag = peek();
        for (std::string_view end : end_tags) {
          if (tag.type == TokenType::Name && tag.text == end) {
            pos_ += 2;
            found = tag.text;
            return body;
          }
        }
        ++pos_;
        body.push_back(parse_statement());
      } else {
        error(fmt::format("unexpected {}", describe(t)));
      }
    }
  }

  StmtPtr parse_print() {
    auto s = std::make_unique<Stmt>(StmtKind::Print, loc());
    ++pos_;
    s->expr = parse_tuple(true);
    if (cur().type != TokenType::VarEnd)
      error(fmt::format("expected end of print statement '}}}}', got {}", describe(cur())));
    ++pos_;
    return s;
  }

  StmtPtr parse_statement() {
    SourceLoc l = loc();
    if (cur().type != TokenType::Name)
      error(fmt::format("expected a tag name, got {}", describe(cur())));
    std::string tag = tokens_[pos_++].text;
    if (tag == "if") return parse_if(l);
    if (tag == "for") return parse_for(l);
    if (tag == "set") return parse_set(l);
    if (tag == "macro") return parse_macro(l);
    if (tag == "call") return parse_call_block(l);
    if (tag == "filter") return parse_filter_block(l);
    if (tag == "with") return parse_with(l);
    if (tag == "generation") return parse_simple_block(l, StmtKind::Generation, "endgeneration");
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) throw TemplateError(fmt::format("'{}' outside of a loop", tag), l);
      expect_block_end();
      return std::make_unique<Stmt>(tag == "break" ? StmtKind::Break : StmtKind::Continue, l);
    }
    throw TemplateError(fmt::format("unknown or unsupported tag '{}'", tag), l);
  }

  StmtPtr parse_if(SourceLoc l) {
    auto s = std::make_unique<Stmt>(StmtKind::If, l);
    s->expr = parse_expression();
    expect_block_end();
    std::string found;
    s->body = parse_body({"elif", "else", "endif"}, found);
    if (found == "elif") {
      s->otherwise.push_back(parse_if(loc()));
      return s;
    }
    if (found == "else") {
      expect_block_end();
      s->otherwise = parse_body({"endif"}, found);
    }
    expect_block_end();
    return s;
  }

  std::vector<std::string> parse_target_names() {
    std::vector<std::string> names;
    bool paren = accept_op("(");
    do {
      names.push_back(expect_name());
    } while (accept_op(","));
    if (paren) expect_op(")");
    return names;
  }

  StmtPtr parse_for(SourceLoc l) {
    auto s = std::make_unique<Stmt>(StmtKind::For, l);
    s->targets = parse_target_names();
    if (!accept_name("in")) error("expected 'in' in for loop");
    s->expr = parse_tuple(false);
    if (accept_name("if")) s->filter = parse_expression();
    if (accept_name("recursive")) s->recursive = true;
    expect_block_end();
    std::string found;
    ++loop_depth_;
    s->body = parse_body({"else", "endfor"}, found);
    --loop_depth_;
    if (found == "else") {
      expect_block_end();
      s->otherwise = parse_body({"endfor"}, found);
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(SourceLoc l) {
    auto s = std::make_unique<Stmt>(StmtKind::Set, l);
    std::string first = expect_name();
    if (accept_op(".")) {
      s->targets.push_back(first);
      s->attr = expect_name();
    } else {
      s->targets.push_back(first);
      while (accept_op(",")) s->targets.push_back(expect_name());
    }
    if (accept_op("=")) {
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (!s->attr.empty() || s->targets.size() != 1) error("expected '=' in set statement");
    s->kind = StmtKind::SetBlock;
    s->text = first;
    while (accept_op("|")) s->filters.push_back(parse_filter(nullptr));
    expect_block_end();
    std::string found;
    s->body = parse_body({"endset"}, found);
    expect_block_end();
    return s;
  }

  std::vector<MacroParam> parse_params() {
    std::vector<MacroParam> params;
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (accept_op("=")) p.default_value = parse_expression();
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  StmtPtr parse_macro(SourceLoc l) {
    auto s = std::make_unique<Stmt>(StmtKind::Macro, l);
    s->text = expect_name();
    s->params = parse_params();
    expect_block_end();
    std::string found;
    int saved_loops = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"}, found);
    loop_depth_ = saved_loops;
    if (cur().type == TokenType::Name) ++pos_;  // optional macro name after endmacro
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(SourceLoc l) {
    auto s = std::make_unique<Stmt>(StmtKind::CallBlock, l);
    if (is_op("(")) s->params = parse_params();
    s->expr = parse_expression();
    if (s->expr->kind != ExprKind::Call) error("expected a macro call in call block");
    expect_block_end();
    std::string found;
    s->body = parse_body({"endcall"}, found);
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(SourceLoc l) {
    auto s = std::make_unique<Stmt>(StmtKind::FilterBlock, l);
    do {
      s->filters.push_back(parse_filter(nullptr));
    } while (accept_op("|"));
    expect_block_end();
    std::string found;
    s->body = parse_body({"endfilter"}, found);
    expect_block_end();
    return s;
  }

  StmtPtr parse_with(SourceLoc l) {
    auto s = std::make_unique<Stmt>(StmtKind::With, l);
    while (cur().type != TokenType::BlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(expect_name());
      expect_op("=");
      s->values.push_back(parse_expression());
    }
    expect_block_end();
    std::string found;
    s->body = parse_body({"endwith"}, found);
    expect_block_end();
    return s;
  }

  StmtPtr parse_simple_block(SourceLoc l, StmtKind kind, std::string_view end) {
    auto s = std::make_unique<Stmt>(kind, l);
    expect_block_end();
    std::string found;
    s->body = parse_body({end}, found);
    expect_block_end();
    return s;
  }

  // ---- expressions ----

  // A comma-separated list becomes a tuple: `{{ a, b }}`, `set x = 1, 2`.
  ExprPtr parse_tuple(bool with_condexpr) {
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

  ExprPtr parse_expression() {
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

  ExprPtr binary(std::string op, ExprPtr lhs, ExprPtr rhs, SourceLoc l) {
    auto e = make(ExprKind::Binary, l);
    e->name = std::move(op);
    e->object = std::move(lhs);
    e->index = std::move(rhs);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr lhs = parse_and();
    while (is_name("or")) {
      SourceLoc l = loc();
      ++pos_;
      lhs = binary("or", std::move(lhs), parse_and(), l);
    }
    return lhs;
  }

  ExprPtr parse_and() {
    ExprPtr lhs = parse_not();
    while (is_name("and")) {
      SourceLoc l = loc();
      ++pos_;
      lhs = binary("and", std::move(lhs), parse_not(), l);
    }
    return lhs;
  }

  ExprPtr parse_not() {
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

  // Comparisons chain as in Python: `a < b < c` means `a < b and b < c`.
  ExprPtr parse_compare() {
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

  ExprPtr parse_math1() {
    ExprPtr lhs = parse_concat();
    while (is_op("+") || is_op("-")) {
      SourceLoc l = loc();
      std::string op = tokens_[pos_++].text;
      lhs = binary(op, std::move(lhs), parse_concat(), l);
    }
    return lhs;
  }

  ExprPtr parse_concat() {
    ExprPtr lhs = parse_math2();
    while (is_op("~")) {
      SourceLoc l = loc();
      ++pos_;
      lhs = binary("~", std::move(lhs), parse_math2(), l);
    }
    return lhs;
  }

  ExprPtr parse_math2() {
    ExprPtr lhs = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      SourceLoc l = loc();
      std::string op = tokens_[pos_++].text;
      lhs = binary(op, std::move(lhs), parse_pow(), l);
    }
    return lhs;
  }

  ExprPtr parse_pow() {
    ExprPtr lhs = parse_unary(true);
    while (is_op("**")) {
      SourceLoc l = loc();
      ++pos_;
      lhs = binary("**", std::move(lhs), parse_unary(true), l);
    }
    return lhs;
  }

  ExprPtr parse_unary(bool with_filter) {
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

  ExprPtr literal(Value v, SourceLoc l) {
    auto e = make(ExprKind::Literal, l);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
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
        if (ec != std::errc()) error("integer literal out of range");
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

  ExprPtr parse_name_primary(SourceLoc l) {
    std::string name = tokens_[pos_++].text;
    if (name == "true" || name == "True") return literal(Value::boolean(true), l);
    if (name == "false" || name == "False") return literal(Value::boolean(false), l);
    if (name == "none" || name == "None") return literal(Value::none(), l);
    auto e = make(ExprKind::Name, l);
    e->name = std::move(name);
    return e;
  }

  ExprPtr parse_paren(SourceLoc l) {
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

  ExprPtr parse_list(SourceLoc l) {
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

  ExprPtr parse_dict(SourceLoc l) {
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

  ExprPtr parse_postfix(ExprPtr node) {
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

  ExprPtr parse_filter_expr(ExprPtr node) {
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

  ExprPtr parse_subscript(ExprPtr node) {
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

  void parse_args(Expr& e) {
    expect_op("(");
    while (!is_op(")")) {
      if (!e.args.empty() || !e.kwargs.empty()) expect_op(",");
      if (is_op(")")) break;
      if (cur().type == TokenType::Name && peek().type == TokenType::Operator &&
          peek().text == "=") {
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

  ExprPtr parse_call(ExprPtr callee) {
    DepthGuard guard(*this);
    auto e = make(ExprKind::Call, loc());
    e->object = std::move(callee);
    parse_args(*e);
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && peek().type == TokenType::Name) {
      pos_ += 1;
      name += "." + expect_name();
    }
    return name;
  }

  ExprPtr parse_filter(ExprPtr node) {
    DepthGuard guard(*this);
    auto e = make(ExprKind::Filter, loc());
    e->object = std::move(node);
    e->name = parse_dotted_name();
    if (is_op("(")) parse_args(*e);
    return e;
  }

  bool starts_test_argument() const {
    const Token& t = cur();
    if (t.type == TokenType::Name) return t.text != "else" && t.text != "or" && t.text != "and";
    if (t.type == TokenType::String || t.type == TokenType::Integer || t.type == TokenType::Float)
      return true;
    return t.type == TokenType::Operator && (t.text == "(" || t.text == "[" || t.text == "{");
  }

  ExprPtr parse_test(ExprPtr node) {
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

  LineIndex lines_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

// jinja2 reads "\r\n" and "\r" as "\n" and drops one trailing newline
// (keep_trailing_newline=False).
static std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Body parse_template(std::string_view source) {
  std::string normalized = normalize_newlines(source);
  return Parser(normalized).parse();
}

}  // namespace shardlm::tmpl
