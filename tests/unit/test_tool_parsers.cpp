// Tool-call parsers (server/openai/tool_parsers.h) on recorded outputs of each family's format:
// the calls' names and arguments, the content around them, text without calls left whole, and
// streaming: at every split of the text, what streaming would send before the parser's start
// marker never holds a byte of a call.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/openai/tool_parsers.h"

namespace shardlm::server {
namespace {

using nlohmann::json;

std::string trim_copy(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

struct Case {
  const char* parser;
  std::string text;
  std::string content;
  std::vector<std::pair<std::string, json>> calls;
};

std::vector<Case> cases() {
  return {
      {"hermes",
       "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
       "\"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", "
       "\"arguments\": {\"tz\": \"CET\"}}\n</tool_call>",
       "Let me check.",
       {{"get_weather", {{"city", "Paris"}, {"unit", "c"}}}, {"get_time", {{"tz", "CET"}}}}},
      {"qwen", "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"s\": \"a}\\\"b\"}}\n</tool_call>",
       "", {{"f", {{"s", "a}\"b"}}}}},
      {"llama3_json",
       "{\"name\": \"search\", \"parameters\": {\"q\": \"shardlm\"}}; {\"name\": \"open\", "
       "\"parameters\": {\"id\": 3}}",
       "", {{"search", {{"q", "shardlm"}}}, {"open", {{"id", 3}}}}},
      {"llama3_json", "<|python_tag|>{\"name\": \"calc\", \"parameters\": {\"x\": 1.5}}", "",
       {{"calc", {{"x", 1.5}}}}},
      {"mistral",
       "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}, {\"name\": "
       "\"noop\", \"arguments\": {}}]",
       "", {{"get_weather", {{"city", "Oslo"}}}, {"noop", json::object()}}},
      {"mistral", "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\"}", "Sure.",
       {{"get_weather", {{"city", "Rome"}}}}},
      {"qwen3_coder",
       "I'll look.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n"
       "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
       "I'll look.", {{"get_weather", {{"city", "New York"}, {"days", 3}}}}},
      {"deepseek_v3",
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
       "{\"city\": \"Tokyo\"}\n```<｜tool▁call▁end｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
       "get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "", {{"get_weather", {{"city", "Tokyo"}}}, {"get_time", json::object()}}},
      {"pythonic",
       "[get_weather(city='Paris', days=2, metric=True), lookup(ids=[1, 2], meta={'a': None})]", "",
       {{"get_weather", {{"city", "Paris"}, {"days", 2}, {"metric", true}}},
        {"lookup", {{"ids", {1, 2}}, {"meta", {{"a", nullptr}}}}}}},
  };
}

TEST(ToolParsers, RecordedOutputs) {
  for (const Case& c : cases()) {
    const ToolCallParser* p = find_tool_call_parser(c.parser);
    ASSERT_NE(p, nullptr) << c.parser;
    const ParsedToolOutput out = p->parse(c.text);
    EXPECT_EQ(out.content, c.content) << c.parser << ": " << c.text;
    ASSERT_EQ(out.calls.size(), c.calls.size()) << c.parser << ": " << c.text;
    for (size_t i = 0; i < c.calls.size(); ++i) {
      EXPECT_EQ(out.calls[i].name, c.calls[i].first) << c.parser;
      EXPECT_EQ(json::parse(out.calls[i].arguments), c.calls[i].second) << c.parser;
    }
  }
}

TEST(ToolParsers, TextWithoutCallsIsContent) {
  for (const char* name : {"hermes", "llama3_json", "mistral", "qwen3_coder", "deepseek_v3",
                           "pythonic"}) {
    const ToolCallParser* p = find_tool_call_parser(name);
    for (const std::string text : {"The answer is 4.", "[not a call", "{broken json"}) {
      const ParsedToolOutput out = p->parse(text);
      EXPECT_TRUE(out.calls.empty()) << name << ": " << text;
      EXPECT_EQ(out.content, text) << name;
    }
  }
}

// Streaming sends the text before call_start(text so far); at every split point, that prefix
// must be a prefix of the final content (never a byte of the call markup).
TEST(ToolParsers, StreamedAtEveryByteHoldsCallsBack) {
  for (const Case& c : cases()) {
    const ToolCallParser* p = find_tool_call_parser(c.parser);
    size_t sent = 0;
    for (size_t n = 0; n <= c.text.size(); ++n) {
      const std::string_view so_far(c.text.data(), n);
      const size_t start = p->call_start(so_far);
      const size_t ready = start == std::string_view::npos ? n : start;
      sent = std::max(sent, std::min(ready, n));
      EXPECT_TRUE(c.content.starts_with(trim_copy(c.text.substr(0, sent))) ||
                  sent <= c.text.find_first_not_of(" \n"))
          << c.parser << " at byte " << n << ": sent '" << c.text.substr(0, sent) << "'";
    }
    EXPECT_EQ(p->parse(c.text).calls.size(), c.calls.size());
  }
}

TEST(ToolParsers, MarkerStart) {
  EXPECT_EQ(marker_start("abc <tool", "<tool_call>"), 4u);
  EXPECT_EQ(marker_start("abc <tool_call>{", "<tool_call>"), 4u);
  EXPECT_EQ(marker_start("abc", "<tool_call>"), std::string_view::npos);
  EXPECT_EQ(find_tool_call_parser("nonsense"), nullptr);
  EXPECT_NE(tool_call_parser_names().find("hermes"), std::string::npos);
}

}  // namespace
}  // namespace shardlm::server
