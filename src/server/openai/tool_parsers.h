// Tool-call parsers: a model's output text split into plain content and the tool calls written in
// its family's format, selected by vLLM's --tool-call-parser names: hermes (and qwen: Qwen2.5's
// <tool_call>{json}</tool_call>), llama3_json, mistral, qwen3_coder (XML-like parameters),
// deepseek_v3 and pythonic ([f(a=1), g()]). Pure functions of the text, unit-tested on recorded
// outputs of each family. JSON arguments are kept as the model wrote them, so a stream can send
// them in pieces (json_call_scan.h); arguments built from other formats are compact JSON.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/openai/json_call_scan.h"

namespace shardlm::server {

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object's text
};

struct ParsedToolOutput {
  std::string content;  // the text outside the tool calls (trimmed when calls were found)
  std::vector<ToolCall> calls;
};

class ToolCallParser {
 public:
  virtual ~ToolCallParser() = default;
  virtual ParsedToolOutput parse(const std::string& text) const = 0;
  // The calls a streamed text shows so far, for argument deltas: names once complete, arguments
  // as prefixes of what parse() of any longer text gives (parse()'s calls are the complete ones).
  virtual std::vector<PartialToolCall> partial(std::string_view text) const = 0;
  // Where the first tool call may begin in a streamed text so far: the position of the family's
  // start marker, or of a partial marker at the end of the text; npos when the text before the end
  // cannot start one. Streaming sends content up to here and holds the rest back.
  virtual size_t call_start(std::string_view text) const = 0;
};

// nullptr for an unknown name.
const ToolCallParser* find_tool_call_parser(std::string_view name);
// "hermes, llama3_json, ..." for flag help and errors.
std::string tool_call_parser_names();

// The start of `marker`, or of a prefix of it that ends `text`; npos when neither.
size_t marker_start(std::string_view text, std::string_view marker);

}  // namespace shardlm::server
