// Structured-output request fields: OpenAI's response_format (json_object, json_schema), vLLM's
// guided_json / guided_regex / guided_choice / guided_grammar and SGLang's json_schema / regex /
// ebnf, read into one GrammarSpec (at most one per request), then compiled through the server's
// GrammarCompiler into the request's SamplingParams::grammar. A constraint the compiler rejects
// is a 400 naming the field and what the compiler said.
#pragma once

#include <optional>
#include <string>

#include "engine/grammar.h"
#include "server/openai/json_fields.h"
#include "server/serving_context.h"

namespace shardlm::server {

struct StructuredOutput {
  std::string field;  // the request field that asked for it, e.g. "response_format"
  GrammarSpec spec;
};

// The fields every structured-output spelling uses (for the endpoints' field lists).
inline constexpr std::string_view kStructuredOutputFields[] = {
    "response_format", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
    "json_schema",     "regex",       "ebnf"};

// nullopt when the body asks for no constraint; 400 naming the field when it asks wrongly or
// sends two.
std::optional<StructuredOutput> parse_structured_output(const Json& body);

// The compiled grammar for `so`; 400 naming so.field when the server runs without a grammar
// backend (--grammar-backend none) or the compiler rejects it.
std::shared_ptr<const CompiledGrammar> compile_structured_output(const ServingContext& ctx,
                                                                 const StructuredOutput& so);

}  // namespace shardlm::server
