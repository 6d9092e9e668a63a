// The <think> splitters.
#include "server/openai/reasoning_parser.h"

namespace shardlm::server {

namespace {

std::string_view skip_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == '\n' || s.front() == ' ')) s.remove_prefix(1);
  return s;
}

}  // namespace

ReasoningSplit ReasoningParser::split(std::string_view text) const {
  std::string_view body = skip_blanks(text);
  const bool opened = body.starts_with(kStart);
  if (opened) body.remove_prefix(kStart.size());
  if (!opened && !starts_in_reasoning_) return {"", std::string(text)};
  const size_t end = body.find(kEnd);
  if (end == std::string_view::npos) {
    // Still thinking when the output ended (deepseek_r1), or an unclosed <think> (qwen3: vLLM
    // keeps it as content).
    return starts_in_reasoning_ ? ReasoningSplit{std::string(body), ""}
                                : ReasoningSplit{"", std::string(text)};
  }
  return {std::string(body.substr(0, end)),
          std::string(skip_blanks(body.substr(end + kEnd.size())))};
}

const ReasoningParser* find_reasoning_parser(std::string_view name) {
  static const ReasoningParser deepseek_r1(true), qwen3(false);
  if (name == "deepseek_r1") return &deepseek_r1;
  if (name == "qwen3") return &qwen3;
  return nullptr;
}

}  // namespace shardlm::server
