// Tool-call parsers (server/openai/tool_parsers.h) on recorded outputs of each family's format:
// the calls' names and arguments, the content around them, text without calls left whole, and
// streaming: at every split of the text, what streaming would send before the parser's start
// marker never holds a byte of a call; and the calls streamed as OpenAI's deltas (the name first,
// then argument pieces) at every split of the text add up to the calls of the whole text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/openai/chat_output.h"
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
      {"qwen",
       "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"s\": \"a}\\\"b\"}}\n</tool_call>",
       "",
       {{"f", {{"s", "a}\"b"}}}}},
      {"llama3_json",
       "{\"name\": \"search\", \"parameters\": {\"q\": \"shardlm\"}}; {\"name\": \"open\", "
       "\"parameters\": {\"id\": 3}}",
       "",
       {{"search", {{"q", "shardlm"}}}, {"open", {{"id", 3}}}}},
      {"llama3_json",
       "<|python_tag|>{\"name\": \"calc\", \"parameters\": {\"x\": 1.5}}",
       "",
       {{"calc", {{"x", 1.5}}}}},
      {"mistral",
       "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}, {\"name\": "
       "\"noop\", \"arguments\": {}}]",
       "",
       {{"get_weather", {{"city", "Oslo"}}}, {"noop", json::object()}}},
      {"mistral",
       "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\"}",
       "Sure.",
       {{"get_weather", {{"city", "Rome"}}}}},
      {"qwen3_coder",
       "I'll look.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n"
       "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
       "I'll look.",
       {{"get_weather", {{"city", "New York"}, {"days", 3}}}}},
      {"deepseek_v3",
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
       "{\"city\": \"Tokyo\"}\n```<｜tool▁call▁end｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
       "get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "",
       {{"get_weather", {{"city", "Tokyo"}}}, {"get_time", json::object()}}},
      {"pythonic",
       "[get_weather(city='Paris', days=2, metric=True), lookup(ids=[1, 2], meta={'a': None})]",
       "",
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
  for (const char* name :
       {"hermes", "llama3_json", "mistral", "qwen3_coder", "deepseek_v3", "pythonic"}) {
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

// What partial() reads from every prefix of a recorded output is a prefix of the final calls:
// names complete or absent, arguments prefixes of the final arguments, calls never more.
TEST(ToolParsers, PartialReadingsArePrefixesOfTheFinal) {
  for (const Case& c : cases()) {
    const ToolCallParser* p = find_tool_call_parser(c.parser);
    const ParsedToolOutput whole = p->parse(c.text);
    size_t most_pieces = 0;
    for (size_t n = 0; n <= c.text.size(); ++n) {
      const std::vector<PartialToolCall> calls = p->partial(std::string_view(c.text).substr(0, n));
      ASSERT_LE(calls.size(), whole.calls.size()) << c.parser << " at byte " << n;
      for (size_t i = 0; i < calls.size(); ++i) {
        if (calls[i].name.empty()) continue;
        EXPECT_EQ(calls[i].name, whole.calls[i].name) << c.parser << " at byte " << n;
        EXPECT_TRUE(whole.calls[i].arguments.starts_with(calls[i].arguments))
            << c.parser << " at byte " << n << ": '" << calls[i].arguments << "' vs '"
            << whole.calls[i].arguments << "'";
        most_pieces = std::max(most_pieces, calls[i].arguments.size());
      }
    }
    EXPECT_GT(most_pieces, 0u) << c.parser;
  }
}

struct Streamed {
  std::string content;
  std::vector<ToolCall> calls;
  size_t argument_pieces = 0;  // deltas carrying a piece of arguments
};

// The text fed to a ChatStreamSplitter in the given pieces; the deltas checked as OpenAI sends
// them and put together.
Streamed stream(const ChatOutputOptions& o, const std::string& text,
                const std::vector<size_t>& cuts) {
  ChatStreamSplitter s(o);
  Streamed out;
  auto add = [&](const ChatParts& p) {
    out.content += p.content;
    for (const ToolCallDelta& d : p.call_deltas) {
      if (d.first) {
        EXPECT_EQ(d.index, out.calls.size()) << "calls start in order";
        EXPECT_FALSE(d.name.empty());
        out.calls.push_back({d.name, ""});
      }
      EXPECT_LT(d.index, out.calls.size()) << "a piece of a call that has not started";
      if (d.index >= out.calls.size()) continue;
      out.calls[d.index].arguments += d.arguments;
      if (!d.arguments.empty()) ++out.argument_pieces;
    }
  };
  size_t from = 0;
  for (size_t cut : cuts) {
    add(s.push(text.substr(from, cut - from)));
    from = cut;
  }
  add(s.push(text.substr(from)));
  add(s.finish());
  return out;
}

void expect_same_calls(const std::vector<ToolCall>& a, const std::vector<ToolCall>& b,
                       const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name) << what;
    EXPECT_EQ(a[i].arguments, b[i].arguments) << what;
  }
}

TEST(ToolCallStream, EveryParserAtEveryByteGivesTheWholeTextsCalls) {
  auto tools = std::make_shared<ToolsRequest>();
  for (const Case& c : cases()) {
    const ChatOutputOptions o{tools, find_tool_call_parser(c.parser), nullptr};
    const ChatParts whole = split_chat_output(o, c.text);
    ASSERT_EQ(whole.calls.size(), c.calls.size()) << c.parser;
    std::vector<size_t> every_byte;
    for (size_t i = 1; i < c.text.size(); ++i) every_byte.push_back(i);
    const Streamed bytes = stream(o, c.text, every_byte);
    expect_same_calls(bytes.calls, whole.calls, std::string(c.parser) + " byte by byte");
    EXPECT_EQ(bytes.content, whole.content) << c.parser;
    // Arguments written as JSON reach the client in pieces as they are generated.
    if (std::string_view(c.parser) != "pythonic") {
      EXPECT_GT(bytes.argument_pieces, whole.calls.size()) << c.parser;
    }
    for (size_t cut = 1; cut < c.text.size(); ++cut) {  // one split at every byte
      const Streamed two = stream(o, c.text, {cut});
      expect_same_calls(two.calls, whole.calls,
                        std::string(c.parser) + " split at " + std::to_string(cut));
      EXPECT_EQ(two.content, whole.content) << c.parser << " split at " << cut;
    }
  }
}

TEST(ToolCallStream, RequiredAndNamedChoicesStreamArguments) {
  auto tools = std::make_shared<ToolsRequest>();
  tools->choice = ToolsRequest::Choice::kRequired;
  const ChatOutputOptions o{tools, nullptr, nullptr};
  const std::string required =
      R"([{"name": "g", "parameters": {"a": [1, 2], "s": "x}]"}}, {"name": "f", "parameters": {}}])";
  tools->choice = ToolsRequest::Choice::kRequired;
  const ChatParts whole = split_chat_output(o, required);
  ASSERT_EQ(whole.calls.size(), 2u);
  EXPECT_EQ(whole.calls[0].arguments, R"({"a": [1, 2], "s": "x}]"})");
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < required.size(); ++i) every_byte.push_back(i);
  const Streamed r = stream(o, required, every_byte);
  expect_same_calls(r.calls, whole.calls, "required");
  EXPECT_GT(r.argument_pieces, 10u);
  tools->choice = ToolsRequest::Choice::kNamed;
  tools->named = "f";
  const std::string named = R"({"x": true, "y": "long text"}<|eos|>)";
  every_byte.clear();
  for (size_t i = 1; i < named.size(); ++i) every_byte.push_back(i);
  const Streamed n = stream(o, named, every_byte);
  expect_same_calls(n.calls, split_chat_output(o, named).calls, "named");
  ASSERT_EQ(n.calls.size(), 1u);
  EXPECT_EQ(n.calls[0].arguments, R"({"x": true, "y": "long text"})");
  tools->parallel = false;  // one call only, streamed or not
  tools->choice = ToolsRequest::Choice::kRequired;
  expect_same_calls(stream(o, required, every_byte).calls, {whole.calls[0]}, "one call");
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
