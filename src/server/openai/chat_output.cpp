// Splitting chat output into reasoning, content and tool calls, whole and streamed.
#include "server/openai/chat_output.h"

#include <algorithm>

namespace shardlm::server {

namespace {

bool holds_calls(const ChatOutputOptions& o) {
  return o.tools && o.tools->choice != ToolsRequest::Choice::kNone;
}

}  // namespace

ChatParts split_chat_output(const ChatOutputOptions& o, const std::string& text) {
  ChatParts parts;
  ReasoningSplit r = o.reasoning ? o.reasoning->split(text) : ReasoningSplit{"", text};
  parts.reasoning = std::move(r.reasoning);
  if (!holds_calls(o)) {
    parts.content = std::move(r.content);
    return parts;
  }
  ParsedToolOutput t = extract_tool_calls(*o.tools, o.tool_parser, r.content);
  parts.content = std::move(t.content);
  parts.calls = std::move(t.calls);
  return parts;
}

size_t ChatStreamSplitter::ready_end() const {
  const std::string_view rest = std::string_view(text_).substr(content_from_);
  if (!holds_calls(o_)) return text_.size();
  using Choice = ToolsRequest::Choice;
  if (o_.tools->choice == Choice::kRequired || o_.tools->choice == Choice::kNamed) {
    return content_from_;  // the whole answer is the call
  }
  if (!o_.tool_parser) return text_.size();
  const size_t start = o_.tool_parser->call_start(rest);
  size_t end = start == std::string_view::npos ? text_.size() : content_from_ + start;
  // Blanks may be all that separates the content from a call: held until text follows them.
  while (end > content_from_ &&
         std::string_view(" \t\r\n").find(text_[end - 1]) != std::string_view::npos) {
    --end;
  }
  return end;
}

ChatParts ChatStreamSplitter::push(const std::string& text) {
  text_ += text;
  ChatParts out;
  if (o_.reasoning && !decided_) {
    const std::string_view s = text_;
    const size_t b = s.find_first_not_of(" \n");
    if (b == std::string_view::npos) return out;
    const std::string_view start = ReasoningParser::kStart;
    const std::string_view head = s.substr(b, start.size());
    if (head.size() < start.size() && start.starts_with(head)) return out;  // maybe "<think>"
    decided_ = true;
    if (head == start) {
      reasoning_open_ = true;
      sent_ = b + start.size();
    } else {
      reasoning_open_ = o_.reasoning->starts_in_reasoning();
    }
  }
  if (reasoning_open_) {
    const std::string_view rest = std::string_view(text_).substr(sent_);
    const size_t end = rest.find(ReasoningParser::kEnd);
    if (end == std::string_view::npos) {
      const size_t hold = marker_start(rest, ReasoningParser::kEnd);
      const size_t n = hold == std::string_view::npos ? rest.size() : hold;
      out.reasoning = std::string(rest.substr(0, n));
      sent_ += n;
      return out;
    }
    out.reasoning = std::string(rest.substr(0, end));
    reasoning_open_ = false;
    skip_blanks_ = true;
    content_from_ = sent_ + end + ReasoningParser::kEnd.size();
    sent_ = content_from_;
  }
  while (skip_blanks_ && sent_ < text_.size()) {
    if (text_[sent_] != '\n' && text_[sent_] != ' ') {
      skip_blanks_ = false;
      break;
    }
    content_from_ = ++sent_;
  }
  if (!o_.reasoning) content_from_ = 0;
  const size_t end = std::max(ready_end(), sent_);
  out.content = text_.substr(sent_, end - sent_);
  sent_ = end;
  out.call_deltas = call_deltas();
  return out;
}

std::vector<ToolCallDelta> ChatStreamSplitter::call_deltas() {
  if (!holds_calls(o_) || reasoning_open_ || (o_.reasoning && !decided_)) return {};
  const std::string_view answer = std::string_view(text_).substr(content_from_);
  return calls_.update(partial_tool_calls(*o_.tools, o_.tool_parser, answer));
}

ChatParts ChatStreamSplitter::finish() {
  ChatParts out;
  if (o_.reasoning && !decided_) {  // ended before it was known whether it reasoned
    ReasoningSplit r = o_.reasoning->split(text_);
    return {std::move(r.reasoning), std::move(r.content), {}, {}};
  }
  if (reasoning_open_) {  // ended inside the reasoning: the held-back bytes are reasoning too
    out.reasoning = text_.substr(sent_);
    return out;
  }
  if (!holds_calls(o_)) {
    out.content = text_.substr(sent_);
    return out;
  }
  ParsedToolOutput t = extract_tool_calls(*o_.tools, o_.tool_parser, text_.substr(content_from_));
  out.call_deltas = calls_.finish(t.calls);
  out.calls = std::move(t.calls);
  // Content not sent yet: what the parser kept as content beyond what streaming already sent.
  const size_t already = sent_ - content_from_;
  if (t.content.size() > already) out.content = t.content.substr(already);
  return out;
}

}  // namespace shardlm::server
