// Filter and test registries: `value | name(args)` and `value is name(args)`, as jinja2 defines
// them (plus transformers' tojson). Split by theme over filters_*.cpp and jinja_tests.cpp.
#pragma once

#include <string>
#include <unordered_map>

#include "template/value.h"

namespace shardlm::tmpl {

class Evaluator;

using FilterFn = Value (*)(Evaluator&, const Value& subject, const CallArgs& args);
using TestFn = bool (*)(Evaluator&, const Value& subject, const CallArgs& args);
using FilterTable = std::unordered_map<std::string, FilterFn>;

const FilterFn* find_filter(const std::string& name);  // nullptr if unknown
// Checks arguments against the filter's Python signature (unknown keywords, too many positional
// arguments) and throws EvalFailure as Python's TypeError would.
void check_filter_args(const std::string& name, const CallArgs& args);
const TestFn* find_test(const std::string& name);

void register_text_filters(FilterTable& table);      // filters_text.cpp
void register_sequence_filters(FilterTable& table);  // filters_sequence.cpp

// Shared argument helpers for filters.
const Value* filter_arg(const CallArgs& args, size_t index, const char* name);
// jinja2's attribute lookup for filters: "a.b.0" walks items/attributes.
Value lookup_attribute_path(const Value& object, const std::string& path);

}  // namespace shardlm::tmpl
