// Lexer: splits template source into text and code tokens, applying jinja2's whitespace control
// ("-" and "+" markers, trim_blocks and lstrip_blocks as transformers configures them).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "template/template_error.h"

namespace shardlm::tmpl {

enum class TokenType {
  Text,        // literal template text
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,  // text holds the unescaped value
  Integer,
  Float,
  Operator,  // text holds the operator
  End,
};

struct Token {
  TokenType type;
  std::string text;
  size_t offset;  // byte offset in the source, for error locations
};

// Maps byte offsets to 1-based line and column.
class LineIndex {
 public:
  explicit LineIndex(std::string_view source);
  SourceLoc locate(size_t offset) const;

 private:
  std::vector<size_t> line_starts_;
};

// Throws TemplateError on an unterminated tag, comment or string, or an unexpected character.
std::vector<Token> tokenize(std::string_view source);

}  // namespace shardlm::tmpl
