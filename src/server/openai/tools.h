// Tool calling on /v1/chat/completions, the request side: `tools`, `tool_choice` (none, auto,
// required, or a named function) and `parallel_tool_calls` read and checked; the grammar that
// enforces `required` (a JSON list of {"name", "parameters"} calls) and a named function (its
// parameters' schema); and the calls read back out of a finished output.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/openai/json_fields.h"
#include "server/openai/structured_output.h"
#include "server/openai/tool_parsers.h"

namespace shardlm::server {

struct ToolsRequest {
  enum class Choice { kNone, kAuto, kRequired, kNamed };
  Json tools = Json::array();  // as the client sent them (the chat template renders them)
  Choice choice = Choice::kAuto;
  std::string named;  // the function of kNamed
  bool parallel = true;
};

// nullopt when the body has no tools (or an empty list); a 400 naming the field when tools,
// tool_choice or parallel_tool_calls are malformed or name an unknown function.
std::optional<ToolsRequest> parse_tools(const Json& body);

// The constraint enforcing tool_choice required or a named function; nullopt for auto and none.
std::optional<StructuredOutput> tool_grammar(const ToolsRequest& tools);

// The calls in a finished output: required -> its JSON list, named -> one call whose arguments
// are the whole output, auto -> what `parser` finds (none without a parser), none -> none.
ParsedToolOutput extract_tool_calls(const ToolsRequest& tools, const ToolCallParser* parser,
                                    const std::string& text);

// The calls a streamed output shows so far (json_call_scan.h): their arguments are prefixes of
// what extract_tool_calls gives once the output is finished.
std::vector<PartialToolCall> partial_tool_calls(const ToolsRequest& tools,
                                                const ToolCallParser* parser,
                                                std::string_view text);

// An assistant message's tool_calls with each function.arguments JSON string turned into an
// object, as chat templates expect (vLLM does the same).
void arguments_to_objects(Json& message);

}  // namespace shardlm::server
