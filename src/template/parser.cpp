// Recursive-descent parser for the jinja2 subset chat templates use: token helpers, statements and
// the parse_template entry point. Expressions are in parser_expressions.cpp.
#include "template/parser.h"

#include "template/macro_scan.h"
#include "template/parser_impl.h"

namespace shardlm::tmpl {

Body Parser::parse() {
  std::string end_tag;
  Body body = parse_body({}, end_tag);
  return body;
}

bool Parser::is_op(std::string_view op) const {
  return cur().type == TokenType::Operator && cur().text == op;
}

bool Parser::is_name(std::string_view name) const {
  return cur().type == TokenType::Name && cur().text == name;
}

bool Parser::accept_op(std::string_view op) {
  if (!is_op(op)) return false;
  ++pos_;
  return true;
}

bool Parser::accept_name(std::string_view name) {
  if (!is_name(name)) return false;
  ++pos_;
  return true;
}

void Parser::expect_op(std::string_view op) {
  if (!accept_op(op)) error(fmt::format("expected '{}', got {}", op, describe(cur())));
}

std::string Parser::expect_name() {
  if (cur().type != TokenType::Name) error(fmt::format("expected a name, got {}", describe(cur())));
  return tokens_[pos_++].text;
}

void Parser::expect_block_end() {
  if (cur().type != TokenType::BlockEnd)
    error(fmt::format("expected end of block '%}}', got {}", describe(cur())));
  ++pos_;
}

std::string Parser::describe(const Token& t) {
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

Body Parser::parse_body(std::initializer_list<std::string_view> end_tags, std::string& found) {
  DepthGuard guard(*this);
  Body body;
  while (true) {
    const Token& t = cur();
    if (t.type == TokenType::End) {
      if (end_tags.size() == 0) return body;
      error(fmt::format("unexpected end of template: missing '{{% {} %}}'", *(end_tags.end() - 1)));
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

StmtPtr Parser::parse_print() {
  auto s = std::make_unique<Stmt>(StmtKind::Print, loc());
  ++pos_;
  s->expr = parse_tuple(true);
  if (cur().type != TokenType::VarEnd)
    error(fmt::format("expected end of print statement '}}}}', got {}", describe(cur())));
  ++pos_;
  return s;
}

StmtPtr Parser::parse_statement() {
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

StmtPtr Parser::parse_if(SourceLoc l) {
  auto s = std::make_unique<Stmt>(StmtKind::If, l);
  s->expr = parse_tuple(false);  // as jinja2: `{% if a if b else c %}` is a syntax error
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

std::vector<std::string> Parser::parse_target_names() {
  std::vector<std::string> names;
  bool paren = accept_op("(");
  do {
    names.push_back(expect_name());
  } while (accept_op(","));
  if (paren) expect_op(")");
  return names;
}

StmtPtr Parser::parse_for(SourceLoc l) {
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

StmtPtr Parser::parse_set(SourceLoc l) {
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

std::vector<MacroParam> Parser::parse_params() {
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

StmtPtr Parser::parse_macro(SourceLoc l) {
  auto s = std::make_unique<Stmt>(StmtKind::Macro, l);
  s->text = expect_name();
  s->params = parse_params();
  expect_block_end();
  std::string found;
  int saved_loops = loop_depth_;
  loop_depth_ = 0;
  s->body = parse_body({"endmacro"}, found);
  loop_depth_ = saved_loops;
  scan_macro_specials(*s);
  if (cur().type == TokenType::Name) ++pos_;  // optional macro name after endmacro
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_call_block(SourceLoc l) {
  auto s = std::make_unique<Stmt>(StmtKind::CallBlock, l);
  if (is_op("(")) s->params = parse_params();
  s->expr = parse_expression();
  if (s->expr->kind != ExprKind::Call) error("expected a macro call in call block");
  expect_block_end();
  std::string found;
  s->body = parse_body({"endcall"}, found);
  scan_macro_specials(*s);
  expect_block_end();
  return s;
}

StmtPtr Parser::parse_filter_block(SourceLoc l) {
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

StmtPtr Parser::parse_with(SourceLoc l) {
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

StmtPtr Parser::parse_simple_block(SourceLoc l, StmtKind kind, std::string_view end) {
  auto s = std::make_unique<Stmt>(kind, l);
  expect_block_end();
  std::string found;
  s->body = parse_body({end}, found);
  expect_block_end();
  return s;
}

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
