// Reading and compiling the structured-output fields.
#include "server/openai/structured_output.h"

#include "server/openai/api_error.h"

namespace shardlm::server {

namespace {

using Kind = GrammarSpec::Kind;

// A schema given as an object, or as JSON text (vLLM accepts both for guided_json).
std::string schema_text(const std::string& field, const Json& v) {
  if (v.is_object()) return v.dump();
  if (v.is_string()) {
    const Json parsed = Json::parse(v.get<std::string>(), nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      bad_request(field, "'{}' must be a JSON schema (an object, or its JSON text)", field);
    }
    return parsed.dump();
  }
  bad_request(field, "'{}' must be a JSON schema (an object, or its JSON text)", field);
}

std::string string_value(const std::string& field, const Json& v) {
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    bad_request(field, "'{}' must be a non-empty string", field);
  }
  return v.get<std::string>();
}

// OpenAI: {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {...}}};
// {"type": "text"} asks for nothing.
std::optional<GrammarSpec> response_format(const Json& v) {
  const char* f = "response_format";
  if (!v.is_object() || !v.contains("type") || !v["type"].is_string()) {
    bad_request(f, "'response_format' must be an object with a string 'type'");
  }
  const std::string type = v["type"].get<std::string>();
  if (type == "text") return std::nullopt;
  if (type == "json_object") return GrammarSpec{Kind::kJsonObject, "", {}};
  if (type != "json_schema") {
    bad_request(f, "response_format type '{}' is not supported; use 'text', 'json_object' or "
                   "'json_schema'", type);
  }
  const auto js = v.find("json_schema");
  if (js == v.end() || !js->is_object() || !js->contains("schema")) {
    bad_request(f, "response_format of type 'json_schema' needs 'json_schema': {{'name': ..., "
                   "'schema': {{...}}}}");
  }
  return GrammarSpec{Kind::kJsonSchema, schema_text(f, (*js)["schema"]), {}};
}

GrammarSpec choices(const Json& v) {
  const char* f = "guided_choice";
  if (!v.is_array() || v.empty()) bad_request(f, "'guided_choice' must be a non-empty list of strings");
  GrammarSpec spec{Kind::kChoice, "", {}};
  for (const Json& c : v) {
    if (!c.is_string() || c.get_ref<const std::string&>().empty()) {
      bad_request(f, "'guided_choice' must hold only non-empty strings, got {}", describe_value(c));
    }
    spec.choices.push_back(c.get<std::string>());
  }
  return spec;
}

std::optional<GrammarSpec> spec_of(const std::string& field, const Json& v) {
  if (field == "response_format") return response_format(v);
  if (field == "guided_json" || field == "json_schema") {
    return GrammarSpec{Kind::kJsonSchema, schema_text(field, v), {}};
  }
  if (field == "guided_regex" || field == "regex") {
    return GrammarSpec{Kind::kRegex, string_value(field, v), {}};
  }
  if (field == "guided_grammar" || field == "ebnf") {
    return GrammarSpec{Kind::kEbnf, string_value(field, v), {}};
  }
  return choices(v);  // guided_choice
}

}  // namespace

std::optional<StructuredOutput> parse_structured_output(const Json& body) {
  std::optional<StructuredOutput> found;
  for (std::string_view name : kStructuredOutputFields) {
    const std::string field(name);
    const auto it = body.find(field);
    if (it == body.end() || it->is_null()) continue;
    std::optional<GrammarSpec> spec = spec_of(field, *it);
    if (!spec) continue;
    if (found) {
      bad_request(field, "'{}' and '{}' both constrain the output; send only one", found->field,
                  field);
    }
    found = StructuredOutput{field, std::move(*spec)};
  }
  return found;
}

std::shared_ptr<const CompiledGrammar> compile_structured_output(const ServingContext& ctx,
                                                                 const StructuredOutput& so) {
  if (!ctx.grammar) {
    bad_request(so.field, "'{}' needs a grammar backend, and this server runs with "
                          "--grammar-backend none; remove '{}' or restart with "
                          "--grammar-backend xgrammar", so.field, so.field);
  }
  try {
    return ctx.grammar->compile(so.spec);
  } catch (const GrammarError& e) {
    bad_request(so.field, "'{}' ({}) could not be compiled into a grammar: {}", so.field,
                to_string(so.spec.kind), e.what());
  }
}

}  // namespace shardlm::server
