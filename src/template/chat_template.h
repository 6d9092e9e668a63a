// ChatTemplate: a model's Jinja2 chat template, compiled once and rendered per request, matching
// what Python's jinja2 produces under transformers' apply_chat_template.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "template/evaluator.h"
#include "template/template_error.h"

namespace shardlm {

// Compiled once, rendered many times; render() is const and safe to call from many threads.
class ChatTemplate {
 public:
  // Throws TemplateError (with line and column) on a syntax error.
  explicit ChatTemplate(std::string source, tmpl::RenderLimits limits = {});
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // context: {"messages": [...], "tools": [...] (optional), "add_generation_prompt": bool,
  // "bos_token": "...", "eos_token": "...", plus any extra keys (e.g. "enable_thinking").
  // As transformers does, "tools" and "documents" are passed as none when absent. Objects keep the
  // key order of the JSON they came from (sorted for nlohmann::json, insertion order for
  // ordered_json); tojson output follows that order. Throws TemplateError.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& source() const { return source_; }

  // The ChatML template used when a model ships none.
  static const char* chatml_default();

 private:
  std::string render_values(tmpl::ValueDict context) const;

  std::string source_;
  tmpl::RenderLimits limits_;
  std::unique_ptr<tmpl::Body> body_;
};

namespace tmpl {
// JSON to template values; objects keep the iteration order of the JSON type.
Value value_from_json(const nlohmann::json& json);
Value value_from_json(const nlohmann::ordered_json& json);
}  // namespace tmpl

}  // namespace shardlm
