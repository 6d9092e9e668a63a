// Reasoning parsers (--reasoning-parser): a reasoning model's <think>...</think> section split
// from its answer into reasoning_content, as vLLM does. deepseek_r1: the chat template opens
// <think> in the prompt, so the output starts inside the reasoning (an output without </think> is
// all reasoning); qwen3: reasoning only when the output opens <think> itself (an output without
// </think> is all content).
#pragma once

#include <string>
#include <string_view>

namespace shardlm::server {

struct ReasoningSplit {
  std::string reasoning;
  std::string content;
};

class ReasoningParser {
 public:
  ReasoningParser(bool starts_in_reasoning) : starts_in_reasoning_(starts_in_reasoning) {}
  ReasoningSplit split(std::string_view text) const;
  bool starts_in_reasoning() const { return starts_in_reasoning_; }
  static constexpr std::string_view kStart = "<think>";
  static constexpr std::string_view kEnd = "</think>";

 private:
  bool starts_in_reasoning_;
};

// nullptr for an unknown name ("deepseek_r1", "qwen3").
const ReasoningParser* find_reasoning_parser(std::string_view name);

}  // namespace shardlm::server
