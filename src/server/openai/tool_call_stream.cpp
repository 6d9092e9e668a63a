// Tool-call deltas from the calls a growing output shows.
#include "server/openai/tool_call_stream.h"

namespace shardlm::server {

std::vector<ToolCallDelta> ToolCallStreamer::update(const std::vector<PartialToolCall>& calls) {
  std::vector<ToolCallDelta> deltas;
  for (size_t i = 0; i < calls.size(); ++i) {
    const PartialToolCall& c = calls[i];
    if (c.name.empty()) break;  // a later call cannot start before this one's name is out
    ToolCallDelta d{i, i >= sent_.size(), "", ""};
    if (d.first) {
      d.name = c.name;
      sent_.emplace_back();
    }
    std::string& sent = sent_[i];
    // The arguments only grow; a reading that does not extend what was sent waits for the end.
    if (c.arguments.size() > sent.size() && c.arguments.starts_with(sent)) {
      d.arguments = c.arguments.substr(sent.size());
      sent = c.arguments;
    }
    if (d.first || !d.arguments.empty()) deltas.push_back(std::move(d));
  }
  return deltas;
}

std::vector<ToolCallDelta> ToolCallStreamer::finish(const std::vector<ToolCall>& calls) {
  std::vector<PartialToolCall> whole;
  for (const ToolCall& c : calls) whole.push_back({c.name, c.arguments, true});
  return update(whole);
}

}  // namespace shardlm::server
