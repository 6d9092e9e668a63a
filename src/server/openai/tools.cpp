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
    bad_request("tools", "tools[{}] must be {{\"type\": \"function\", \"function\": {{\"name\": "
                         "..., \"parameters\": {{...}}}}}}", i);
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
    if (s == "none") r.choice = Choice::kNone;
    else if (s == "auto") r.choice = Choice::kAuto;
    else if (s == "required") r.choice = Choice::kRequired;
    else bad_request("tool_choice", "tool_choice '{}' is not one of none, auto, required", s);
    return;
  }
  const bool named = v.is_object() && v.contains("function") && v["function"].is_object() &&
                     v["function"].contains("name") && v["function"]["name"].is_string();
  if (!named) {
    bad_request("tool_choice", "tool_choice must be none, auto, required or {{\"type\": "
                               "\"function\", \"function\": {{\"name\": ...}}}}");
  }
  r.choice = Choice::kNamed;
  r.named = v["function"]["name"].get<std::string>();
  if (!find_function(r, r.named)) {
    bad_request("tool_choice", "tool_choice names function '{}', which is not in 'tools'", r.named);
  }
}

// The JSON value the text starts with (what the grammar forced), ignoring what follows it (a stop
// token's text); discarded when there is none.
Json leading_json(const std::string& text) {
  std::istringstream in(text);
  Json j;
  try {
    in >> j;
  } catch (const std::exception&) {
    return Json(Json::value_t::discarded);
  }
  return j;
}

}  // namespace

std::optional<ToolsRequest> parse_tools(const Json& body) {
  const auto it = body.find("tools");
  const auto choice = body.find("tool_choice");
  if (it == body.end() || it->is_null() || (it->is_array() && it->empty())) {
    const bool asks = choice != body.end() && !choice->is_null() && *choice != "none" &&
                      *choice != "auto";
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
      const Json args = leading_json(text);
      return {"", {{r.named, args.is_discarded() ? text : args.dump()}}};
    }
    case Choice::kRequired: {
      const Json calls = leading_json(text);
      if (!calls.is_array()) return {text, {}};  // cut short (length): no complete call
      ParsedToolOutput out;
      for (const Json& c : calls) {
        out.calls.push_back({c.value("name", ""), c.value("parameters", Json::object()).dump()});
      }
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
