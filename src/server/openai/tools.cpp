// Reading tools and tool_choice; the grammars of required and named tool choices.
#include "server/openai/tools.h"

#include <sstream>

#include "server/openai/api_error.h"

namespace shardlm::server {

namespace {

using Choice = ToolsRequest::Choice;

std::string function_name(const Json& tool, size_t i) {
  const bool ok = tool.is_object() && tool.value("type", "function") == "function" &&
                  tool.contains("function") && tool["function"].is_object() &&
                  tool["function"].contains("name") && tool["function"]["name"].is_string();
  if (!ok) {
    bad_request("tools",
                "tools[{}] must be {{\"type\": \"function\", \"function\": {{\"name\": "
                "..., \"parameters\": {{...}}}}}}",
                i);
  }
  return tool["function"]["name"].get<std::string>();
}

const Json* find_function(const ToolsRequest& r, const std::string& name) {
  for (const Json& t : r.tools) {
    if (t["function"]["name"] == name) return &t["function"];
  }
  return nullptr;
}

Json parameters_of(const Json& function) {
  const auto it = function.find("parameters");
  return it == function.end() || it->is_null() ? Json{{"type", "object"}} : *it;
}

void parse_choice(const Json& v, ToolsRequest& r) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "none")
      r.choice = Choice::kNone;
    else if (s == "auto")
      r.choice = Choice::kAuto;
    else if (s == "required")
      r.choice = Choice::kRequired;
    else
      bad_request("tool_choice", "tool_choice '{}' is not one of none, auto, required", s);
    return;
  }
  const bool named = v.is_object() && v.contains("function") && v["function"].is_object() &&
                     v["function"].contains("name") && v["function"]["name"].is_string();
  if (!named) {
    bad_request("tool_choice",
                "tool_choice must be none, auto, required or {{\"type\": "
                "\"function\", \"function\": {{\"name\": ...}}}}");
  }
  r.choice = Choice::kNamed;
  r.named = v["function"]["name"].get<std::string>();
  if (!find_function(r, r.named)) {
    bad_request("tool_choice", "tool_choice names function '{}', which is not in 'tools'", r.named);
  }
}

// tool_choice naming a function: the output starts with its arguments object (what the grammar
// forced; a stop token's text may follow), kept as written.
PartialToolCall named_arguments(const ToolsRequest& r, std::string_view text) {
  const size_t b = text.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos || text[b] != '{') return {r.named, "", false};
  const size_t end = json_value_end(text, b);
  return {r.named, std::string(text.substr(b, end == std::string_view::npos ? end : end - b)),
          end != std::string_view::npos &&
              !Json::parse(text.substr(b, end - b), nullptr, false).is_discarded()};
}

}  // namespace

std::optional<ToolsRequest> parse_tools(const Json& body) {
  const auto it = body.find("tools");
  const auto choice = body.find("tool_choice");
  if (it == body.end() || it->is_null() || (it->is_array() && it->empty())) {
    const bool asks =
        choice != body.end() && !choice->is_null() && *choice != "none" && *choice != "auto";
    if (asks) bad_request("tool_choice", "tool_choice asks for a tool call but 'tools' is empty");
    return std::nullopt;
  }
  if (!it->is_array()) bad_request("tools", "'tools' must be a list of functions");
  ToolsRequest r;
  r.tools = *it;
  for (size_t i = 0; i < it->size(); ++i) function_name((*it)[i], i);
  if (choice != body.end() && !choice->is_null()) parse_choice(*choice, r);
  if (auto v = bool_field(body, "parallel_tool_calls")) r.parallel = *v;
  return r;
}

std::optional<StructuredOutput> tool_grammar(const ToolsRequest& r) {
  if (r.choice == Choice::kNamed) {
    const Json params = parameters_of(*find_function(r, r.named));
    return StructuredOutput{"tool_choice", {GrammarSpec::Kind::kJsonSchema, params.dump(), {}}};
  }
  if (r.choice != Choice::kRequired) return std::nullopt;
  Json any_of = Json::array();
  for (const Json& t : r.tools) {
    any_of.push_back({{"type", "object"},
                      {"properties",
                       {{"name", {{"const", t["function"]["name"]}}},
                        {"parameters", parameters_of(t["function"])}}},
                      {"required", {"name", "parameters"}}});
  }
  Json schema = {{"type", "array"}, {"minItems", 1}, {"items", {{"anyOf", any_of}}}};
  if (!r.parallel) schema["maxItems"] = 1;
  return StructuredOutput{"tool_choice", {GrammarSpec::Kind::kJsonSchema, schema.dump(), {}}};
}

ParsedToolOutput extract_tool_calls(const ToolsRequest& r, const ToolCallParser* parser,
                                    const std::string& text) {
  switch (r.choice) {
    case Choice::kNone:
      return {text, {}};
    case Choice::kNamed: {
      const PartialToolCall args = named_arguments(r, text);
      return {"", {{r.named, args.complete ? args.arguments : text}}};
    }
    case Choice::kRequired: {
      // The calls complete so far (a list cut short by the length limit keeps its whole calls).
      ParsedToolOutput out{"", complete_calls<ToolCall>(scan_call_objects(text, ','))};
      if (out.calls.empty()) out.content = text;
      if (!r.parallel && out.calls.size() > 1) out.calls.resize(1);
      return out;
    }
    case Choice::kAuto:
      break;
  }
  if (!parser) return {text, {}};
  ParsedToolOutput out = parser->parse(text);
  if (!r.parallel && out.calls.size() > 1) out.calls.resize(1);
  return out;
}

std::vector<PartialToolCall> partial_tool_calls(const ToolsRequest& r, const ToolCallParser* parser,
                                                std::string_view text) {
  std::vector<PartialToolCall> calls;
  switch (r.choice) {
    case Choice::kNone:
      return calls;
    case Choice::kNamed:
      calls.push_back(named_arguments(r, text));
      return calls;
    case Choice::kRequired:
      calls = scan_call_objects(text, ',');
      break;
    case Choice::kAuto:
      if (parser) calls = parser->partial(text);
      break;
  }
  if (!r.parallel && calls.size() > 1) calls.resize(1);
  return calls;
}

void arguments_to_objects(Json& message) {
  const auto it = message.find("tool_calls");
  if (it == message.end() || !it->is_array()) return;
  for (Json& call : *it) {
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) continue;
    Json& args = call["function"]["arguments"];
    if (!args.is_string()) continue;
    Json parsed = Json::parse(args.get<std::string>(), nullptr, false);
    if (!parsed.is_discarded()) args = std::move(parsed);
  }
}

}  // namespace shardlm::server
