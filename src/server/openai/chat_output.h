// What a chat choice's generated text becomes in the answer: reasoning_content (a reasoning
// parser's <think> section), content, and tool_calls (the request's tools through the tool-call
// parser or its required/named grammar); whole for a full response, or as stream deltas, where
// text that may still turn out to be a tool call or a </think> marker is held back until it is
// known. Streamed tool calls go out as OpenAI's deltas (tool_call_stream.h): each call's name as
// soon as it is complete, then its arguments in pieces as the model writes them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/openai/reasoning_parser.h"
#include "server/openai/tool_call_stream.h"
#include "server/openai/tool_parsers.h"
#include "server/openai/tools.h"

namespace shardlm::server {

struct ChatOutputOptions {
  // null: no tools in the request. Shared: a stream outlives the request handler.
  std::shared_ptr<const ToolsRequest> tools;
  const ToolCallParser* tool_parser = nullptr;  // --tool-call-parser
  const ReasoningParser* reasoning = nullptr;   // --reasoning-parser
};

struct ChatParts {
  std::string reasoning;
  std::string content;
  std::vector<ToolCall> calls;             // whole: every call; streamed: set by finish() only
  std::vector<ToolCallDelta> call_deltas;  // streamed: the calls' new pieces
};

ChatParts split_chat_output(const ChatOutputOptions& o, const std::string& text);

// One streamed choice.
class ChatStreamSplitter {
 public:
  explicit ChatStreamSplitter(ChatOutputOptions o) : o_(o) {}
  // New text in; the reasoning and content deltas that are certain now.
  ChatParts push(const std::string& text);
  // The choice ended: what was held back, and the tool calls.
  ChatParts finish();

 private:
  // The end of the text that is surely reasoning (reasoning_done_ false) or content.
  size_t ready_end() const;
  // The tool calls' new pieces in the answer so far.
  std::vector<ToolCallDelta> call_deltas();

  ChatOutputOptions o_;
  std::string text_;
  size_t sent_ = 0;              // bytes of text_ sent (as reasoning or content)
  bool reasoning_open_ = false;  // inside <think>
  bool decided_ = false;         // whether the output starts in reasoning is known
  size_t content_from_ = 0;      // where the answer (after </think>) starts in text_
  bool skip_blanks_ = false;     // after </think>: the answer's leading blanks are dropped
  ToolCallStreamer calls_;
};

}  // namespace shardlm::server
