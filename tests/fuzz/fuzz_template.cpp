// libFuzzer target for the chat-template renderer: the input is template source, optionally
// followed by a NUL byte and a JSON object of variables. Parsing and rendering may fail with
// TemplateError but must never crash, hang or exhaust memory.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "template/chat_template.h"

namespace {

nlohmann::ordered_json default_context() {
  return nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": [{"type": "text", "text": "hi"}]},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_123456789", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]},
      {"role": "tool", "tool_call_id": "call_123456789", "content": "{\"r\": 2}"},
      {"role": "user", "content": "again"}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"
  })");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string source = input.substr(0, nul);
  nlohmann::ordered_json context = default_context();
  if (nul != std::string::npos) {
    auto vars = nlohmann::ordered_json::parse(input.substr(nul + 1), nullptr, false);
    if (vars.is_object()) {
      for (auto& [key, value] : vars.items()) context[key] = value;
    }
  }
  shardlm::tmpl::RenderLimits limits;
  limits.max_steps = 200000;
  limits.max_output_bytes = 1 << 20;
  try {
    shardlm::ChatTemplate tmpl(source, limits);
    tmpl.render(context);
  } catch (const shardlm::TemplateError&) {
  }
  return 0;
}
