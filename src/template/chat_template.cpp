// ChatTemplate: parse once, then render each context with a fresh Evaluator and scope.
#include "template/chat_template.h"

#include "template/globals.h"
#include "template/parser.h"

namespace shardlm {

namespace tmpl {

namespace {

template <typename Json>
Value convert(const Json& json, int depth) {
  if (depth > 512) throw TemplateError("context JSON nested too deeply", {});
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value::boolean(json.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(json.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = json.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::floating(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::floating(json.template get<double>());
    case nlohmann::json::value_t::string:
      return Value::string(json.template get<std::string>());
    case nlohmann::json::value_t::array: {
      ValueList items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(convert(item, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      ValueDict dict;
      for (auto it = json.begin(); it != json.end(); ++it)
        dict.set(it.key(), convert(it.value(), depth + 1));
      return Value::dict(std::move(dict));
    }
    default:
      throw TemplateError("context JSON holds a value templates cannot use (binary)", {});
  }
}

template <typename Json>
ValueDict context_from_json(const Json& context) {
  if (!context.is_object()) throw TemplateError("render context must be a JSON object", {});
  Value v = convert(context, 0);
  return v.as_dict();
}

}  // namespace

Value value_from_json(const nlohmann::json& json) {
  return convert(json, 0);
}
Value value_from_json(const nlohmann::ordered_json& json) {
  return convert(json, 0);
}

}  // namespace tmpl

ChatTemplate::ChatTemplate(std::string source, tmpl::RenderLimits limits)
    : source_(std::move(source)),
      limits_(limits),
      body_(std::make_unique<tmpl::Body>(tmpl::parse_template(source_))) {}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const nlohmann::json& context) const {
  return render_values(tmpl::context_from_json(context));
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_values(tmpl::context_from_json(context));
}

std::string ChatTemplate::render_values(tmpl::ValueDict context) const {
  auto globals = std::make_shared<tmpl::Scope>(nullptr);
  tmpl::add_globals(*globals);
  // transformers always passes these, as None when the caller gives none.
  for (const char* key : {"tools", "documents"}) {
    if (!context.find(key)) context.set(key, tmpl::Value::none());
  }
  if (!context.find("add_generation_prompt"))
    context.set("add_generation_prompt", tmpl::Value::boolean(false));
  for (const auto& [key, value] : context.items()) globals->set(key.as_string(), value);
  tmpl::Evaluator evaluator(limits_);
  try {
    return evaluator.render(*body_, globals);
  } catch (const tmpl::EvalFailure& failure) {
    throw TemplateError(failure.what(), {});
  }
}

const char* ChatTemplate::chatml_default() {
  return "{%- for message in messages -%}\n"
         "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
         "{%- if message['content'] is string -%}\n"
         "{{- message['content'] -}}\n"
         "{%- elif message['content'] is not none -%}\n"
         "{%- for part in message['content'] if part['type'] == 'text' -%}{{- part['text'] -}}{%- "
         "endfor -%}\n"
         "{%- endif -%}\n"
         "{{- '<|im_end|>\\n' -}}\n"
         "{%- endfor -%}\n"
         "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";
}

}  // namespace shardlm
