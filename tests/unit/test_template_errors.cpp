// Template errors: syntax and runtime errors carry the template line and column, and hostile
// templates are stopped by the render limits instead of hanging or exhausting memory.
#include <gtest/gtest.h>

#include "template/chat_template.h"

namespace {

using nlohmann::ordered_json;
using shardlm::ChatTemplate;
using shardlm::TemplateError;

// Returns the error a template raises (at parse or render time); fails the test if none.
TemplateError error_of(const std::string& source, shardlm::tmpl::RenderLimits limits = {}) {
  try {
    ChatTemplate tmpl(source, limits);
    tmpl.render(ordered_json{{"messages", ordered_json::array()}});
  } catch (const TemplateError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << source;
  return TemplateError("none", {});
}

void expect_error(const std::string& source, int line, int col, const std::string& fragment) {
  TemplateError e = error_of(source);
  EXPECT_EQ(e.loc().line, line) << e.what();
  EXPECT_EQ(e.loc().col, col) << e.what();
  EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
}

}  // namespace

TEST(TemplateErrors, SyntaxErrorsHaveLineAndColumn) {
  expect_error("hello {{ name", 1, 7, "unterminated expression");
  expect_error("a\n{% if x %}b", 2, 12, "missing '{% endif %}'");
  expect_error("{% frobnicate %}", 1, 4, "unknown or unsupported tag 'frobnicate'");
  expect_error("line1\n  {{ 1 + }}", 2, 10, "unexpected '}}'");
  expect_error("{{ 'abc }}", 1, 4, "unterminated string");
  expect_error("{# never closed", 1, 1, "unterminated comment");
  expect_error("{% for x in y %}{% endif %}", 1, 20, "unknown or unsupported tag 'endif'");
  expect_error("{% break %}", 1, 4, "outside of a loop");
  expect_error("{{ a ? b }}", 1, 6, "unexpected character '?'");
}

TEST(TemplateErrors, RaiseExceptionReportsMessageAndLocation) {
  TemplateError e = error_of("ok\n{{ raise_exception('Conversation roles must alternate') }}");
  EXPECT_EQ(e.loc().line, 2);
  EXPECT_EQ(e.detail(), "Conversation roles must alternate");
}

TEST(TemplateErrors, RuntimeErrorsLikePython) {
  expect_error("{{ x.y }}", 1, 5, "'x' is undefined");
  expect_error("{{ 1 + 'a' }}", 1, 6, "unsupported operand");
  expect_error("{{ 'a' + 1 }}", 1, 8, "can only concatenate str");
  expect_error("{{ 1 / 0 }}", 1, 6, "division by zero");
  expect_error("{{ [1]|nosuchfilter }}", 1, 8, "no filter named 'nosuchfilter'");
  expect_error("{{ [].append(1) }}", 1, 13, "unsafe");
  expect_error("{{ 1 < 'a' }}", 1, 4, "not supported between");
  expect_error("{% for x in none %}{% endfor %}", 1, 4, "not iterable");
  expect_error("{% set a, b = [1] %}", 1, 4, "not enough values to unpack");
  expect_error("{{ x|tojson }}", 1, 6, "not JSON serializable");
  expect_error("{{ 9223372036854775807 + 1 }}", 1, 24, "integer overflow");
  expect_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", 1, 35, "takes not more than 1");
}

TEST(TemplateErrors, RunawayLoopsAreStopped) {
  shardlm::tmpl::RenderLimits limits;
  limits.max_steps = 100000;
  TemplateError e = error_of(
      "{% for a in range(100000) %}{% for b in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
      limits);
  EXPECT_NE(std::string(e.what()).find("ran too long"), std::string::npos) << e.what();
  e = error_of("{{ range(1000000)|list|length }}");
  EXPECT_NE(std::string(e.what()).find("range too big"), std::string::npos) << e.what();
}

TEST(TemplateErrors, OutputAndStringSizesAreBounded) {
  shardlm::tmpl::RenderLimits limits;
  limits.max_output_bytes = 1 << 20;
  TemplateError e = error_of("{{ 'x' * 100000000 }}", limits);
  EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
  e = error_of(
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}",
      limits);
  EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
  e = error_of("{% for i in range(100000) %}{{ 'some text ' * 10 }}{% endfor %}", limits);
  EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
}

TEST(TemplateErrors, RecursionIsBounded) {
  TemplateError e = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(std::string(e.what()).find("nested too deeply"), std::string::npos) << e.what();
  e = error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}");
  EXPECT_NE(std::string(e.what()).find("nested too deeply"), std::string::npos) << e.what();
  e = error_of("{% if true %}" + std::string(0, ' ') + [] {
    std::string s;
    for (int i = 0; i < 500; ++i) s += "{% if true %}";
    return s;
  }());
  EXPECT_NE(std::string(e.what()).find("nested too deeply"), std::string::npos) << e.what();
}
