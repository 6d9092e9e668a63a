// Streamed tool calls as OpenAI sends them: for each call, a first delta with its index, id, type
// and function name (arguments empty, or the first piece), then pieces of its arguments as the
// model writes them. Fed the calls a growing output shows (tools.h partial_tool_calls), it sends
// only what is new; at the end, the rest of the final calls.
#pragma once

#include <string>
#include <vector>

#include "server/openai/json_call_scan.h"
#include "server/openai/tool_parsers.h"

namespace shardlm::server {

struct ToolCallDelta {
  size_t index = 0;
  bool first = false;     // carries the call's name (and gets its id and type)
  std::string name;       // when first
  std::string arguments;  // the next piece of the arguments
};

class ToolCallStreamer {
 public:
  // The calls so far in; the deltas that are new.
  std::vector<ToolCallDelta> update(const std::vector<PartialToolCall>& calls);
  // The output ended with these calls: what was not sent of them.
  std::vector<ToolCallDelta> finish(const std::vector<ToolCall>& calls);

 private:
  std::vector<std::string> sent_;  // per call started: the arguments sent so far
};

}  // namespace shardlm::server
