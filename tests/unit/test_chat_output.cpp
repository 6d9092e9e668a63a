// Chat output splitting (server/openai/chat_output.h, reasoning_parser.h): <think> sections into
// reasoning_content for deepseek_r1 and qwen3, tool calls out of the answer, and streaming at
// every split of the text giving the same reasoning, content and calls as the whole text.
#include <gtest/gtest.h>

#include "server/openai/chat_output.h"

namespace shardlm::server {
namespace {

TEST(ReasoningParsers, SplitThinkSections) {
  const ReasoningParser* r1 = find_reasoning_parser("deepseek_r1");
  const ReasoningParser* qwen3 = find_reasoning_parser("qwen3");
  ASSERT_TRUE(r1 && qwen3);
  EXPECT_EQ(find_reasoning_parser("nope"), nullptr);
  auto check = [](const ReasoningParser* p, const char* text, const char* reasoning,
                  const char* content) {
    const ReasoningSplit s = p->split(text);
    EXPECT_EQ(s.reasoning, reasoning) << text;
    EXPECT_EQ(s.content, content) << text;
  };
  check(r1, "Let me add.</think>\n\nIt is 4.", "Let me add.", "It is 4.");
  check(r1, "<think>Hmm.</think>4", "Hmm.", "4");
  check(r1, "still thinking", "still thinking", "");
  check(qwen3, "<think>\nWhy?\n</think>\n\nBecause.", "\nWhy?\n", "Because.");
  check(qwen3, "No thoughts here.", "", "No thoughts here.");
  check(qwen3, "<think>unclosed", "", "<think>unclosed");
}

ChatParts streamed(const ChatOutputOptions& o, const std::string& text, size_t step) {
  ChatStreamSplitter s(o);
  ChatParts all;
  auto add = [&](ChatParts p) {
    all.reasoning += p.reasoning;
    all.content += p.content;
    for (const ToolCallDelta& d : p.call_deltas) {
      if (d.first) all.calls.push_back({d.name, ""});
      all.calls.at(d.index).arguments += d.arguments;
    }
  };
  for (size_t i = 0; i < text.size(); i += step) add(s.push(text.substr(i, step)));
  add(s.finish());
  return all;
}

void expect_same(const ChatParts& a, const ChatParts& b, const std::string& what) {
  EXPECT_EQ(a.reasoning, b.reasoning) << what;
  EXPECT_EQ(a.content, b.content) << what;
  ASSERT_EQ(a.calls.size(), b.calls.size()) << what;
  for (size_t i = 0; i < a.calls.size(); ++i) {
    EXPECT_EQ(a.calls[i].name, b.calls[i].name) << what;
    EXPECT_EQ(a.calls[i].arguments, b.calls[i].arguments) << what;
  }
}

TEST(ChatOutput, StreamedEqualsWholeAtEverySplit) {
  auto tools = std::make_shared<ToolsRequest>();
  tools->tools = Json::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  const std::vector<std::pair<ChatOutputOptions, std::string>> cases = {
      {{nullptr, nullptr, find_reasoning_parser("qwen3")},
       "<think>\nplan: call f\n</think>\n\nThe answer."},
      {{nullptr, nullptr, find_reasoning_parser("deepseek_r1")}, "plan</think>answer"},
      {{tools, find_tool_call_parser("hermes"), nullptr},
       "Checking.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>"},
      {{tools, find_tool_call_parser("hermes"), find_reasoning_parser("qwen3")},
       "<think>need f</think>\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>"},
      {{tools, find_tool_call_parser("mistral"), nullptr}, "plain text, no call"},
  };
  for (const auto& [o, text] : cases) {
    const ChatParts whole = split_chat_output(o, text);
    for (size_t step = 1; step <= text.size(); ++step) {
      expect_same(streamed(o, text, step), whole, text + " step " + std::to_string(step));
    }
  }
}

TEST(ChatOutput, RequiredAndNamedChoices) {
  auto tools = std::make_shared<ToolsRequest>();
  tools->tools = Json::parse(R"([{"type": "function", "function": {"name": "f"}},
                                 {"type": "function", "function": {"name": "g"}}])");
  tools->choice = ToolsRequest::Choice::kRequired;
  ChatOutputOptions o{tools, nullptr, nullptr};
  const ChatParts req =
      split_chat_output(o, R"([{"name": "g", "parameters": {"a": 1}}, {"name": "f", "parameters": {}}])");
  ASSERT_EQ(req.calls.size(), 2u);
  EXPECT_EQ(req.calls[0].name, "g");
  EXPECT_EQ(Json::parse(req.calls[0].arguments), Json::parse(R"({"a": 1})"));
  EXPECT_EQ(streamed(o, R"([{"name": "f", "parameters": {}}])", 3).content, "");
  tools->choice = ToolsRequest::Choice::kNamed;
  tools->named = "f";
  const ChatParts named = split_chat_output(o, R"({"x": true}<|eos|>)");  // a stop token's text
  ASSERT_EQ(named.calls.size(), 1u);
  EXPECT_EQ(named.calls[0].name, "f");
  EXPECT_EQ(Json::parse(named.calls[0].arguments), Json::parse(R"({"x": true})"));
}

TEST(ToolsRequest, FieldsAndGrammars) {
  auto bad = [](const char* body) {
    try {
      parse_tools(Json::parse(body));
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(bad(R"({"tools": [{"type": "function"}]})"), "");
  EXPECT_NE(bad(R"({"tools": [{"type": "function", "function": {"name": "f"}}],
                    "tool_choice": {"type": "function", "function": {"name": "h"}}})"),
            "");
  EXPECT_NE(bad(R"({"tool_choice": "required"})"), "");
  EXPECT_FALSE(parse_tools(Json::parse(R"({"tools": []})")));
  const auto r = parse_tools(Json::parse(R"({"tools": [{"type": "function", "function":
      {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
      "tool_choice": "required", "parallel_tool_calls": false})"));
  ASSERT_TRUE(r);
  const auto g = tool_grammar(*r);
  ASSERT_TRUE(g);
  const Json schema = Json::parse(g->spec.text);
  EXPECT_EQ(schema["maxItems"], 1);
  EXPECT_EQ(schema["items"]["anyOf"][0]["properties"]["name"]["const"], "f");
}

}  // namespace
}  // namespace shardlm::server
