// Parsing and range checks of the OpenAI request bodies.
#include "server/openai/requests.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <span>
#include <string_view>

#include "server/openai/api_error.h"

namespace shardlm::server {

namespace {

constexpr int64_t kMaxInt = 1 << 30;
constexpr int kDefaultCompletionTokens = 16;

void parse_penalties(const Json& b, SamplingParams& s) {
  if (auto v = number_field(b, "presence_penalty", -2, 2)) s.presence_penalty = float(*v);
  if (auto v = number_field(b, "frequency_penalty", -2, 2)) s.frequency_penalty = float(*v);
  if (auto v = number_field(b, "repetition_penalty", 1e-6, 100)) s.repetition_penalty = float(*v);
}

// OpenAI's {"<token id>": bias in [-100, 100]}.
void parse_logit_bias(const Json& b, SamplingParams& s) {
  const auto it = b.find("logit_bias");
  if (it == b.end() || it->is_null()) return;
  if (!it->is_object()) {
    bad_request("logit_bias", "'logit_bias' must be an object of token id -> bias");
  }
  for (const auto& [key, value] : it->items()) {
    char* end = nullptr;
    const long id = std::strtol(key.c_str(), &end, 10);
    if (key.empty() || *end != '\0' || id < 0 || id > std::numeric_limits<int32_t>::max()) {
      bad_request("logit_bias", "logit_bias keys must be token ids, got '{}'", key);
    }
    if (!value.is_number() || !(value.get<double>() >= -100 && value.get<double>() <= 100)) {
      bad_request("logit_bias", "logit_bias values must be numbers in [-100, 100], got {}",
                  describe_value(value));
    }
    s.logit_bias.emplace_back(static_cast<int32_t>(id), value.get<float>());
  }
}

void parse_sampling(const Json& b, SamplingParams& s) {
  if (auto v = number_field(b, "temperature", 0, 100)) s.temperature = float(*v);
  if (auto v = number_field(b, "top_p", 1e-9, 1)) s.top_p = float(*v);
  if (auto v = int_field(b, "top_k", -1, kMaxInt)) s.top_k = int(*v);
  if (auto v = number_field(b, "min_p", 0, 1)) s.min_p = float(*v);
  parse_penalties(b, s);
  if (auto v = int_field(b, "seed", std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max())) {
    s.seed = static_cast<uint64_t>(*v);
  }
  if (auto v = bool_field(b, "ignore_eos")) s.ignore_eos = *v;
  if (auto v = bool_field(b, "skip_special_tokens")) s.skip_special_tokens = *v;
  if (auto v = bool_field(b, "include_stop_str_in_output")) s.include_stop_str_in_output = *v;
  if (auto v = strings_field(b, "stop")) {
    for (const std::string& stop : *v) {
      if (stop.empty()) bad_request("stop", "'stop' strings must not be empty");
    }
    s.stop = *v;
  }
  if (auto v = token_ids_field(b, "stop_token_ids")) s.stop_token_ids = *v;
  parse_logit_bias(b, s);
}

// True when a field's value asks for nothing: null, "", [], {}, or the field's own no-op value.
bool is_no_op(std::string_view name, const Json& v) {
  if (v.is_null() || ((v.is_array() || v.is_object()) && v.empty())) return true;
  if (v.is_string())
    return v.get_ref<const std::string&>().empty() || (name == "tool_choice" && v == "none");
  if (name == "response_format") return v == Json{{"type", "text"}};
  return name == "best_of" && v == 1;
}

// Fields both endpoints read; each endpoint adds its own (kCompletionFields, kChatFields).
constexpr std::string_view kSharedFields[] = {
    "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "presence_penalty",
    "frequency_penalty", "repetition_penalty", "seed", "ignore_eos", "skip_special_tokens",
    "include_stop_str_in_output", "stop", "stop_token_ids", "n", "stream", "stream_options", "user",
    "logprobs", "logit_bias", "return_token_ids", "resume_token_ids",
    // Platform bookkeeping of OpenAI's service that changes nothing in the output.
    "metadata", "store", "service_tier"};
constexpr std::string_view kCompletionFields[] = {"prompt", "echo", "prompt_logprobs",
                                                  "add_special_tokens"};
constexpr std::string_view kChatFields[] = {
    "messages", "max_completion_tokens", "top_logprobs", "add_generation_prompt",
    "chat_template_kwargs", "parallel_tool_calls", "tools", "tool_choice"};
// Fields of the OpenAI, vLLM and SGLang APIs that this server does not implement: accepted only
// with a value that asks for nothing (is_no_op).
constexpr std::string_view kNoOpOnlyFields[] = {
    "tools", "tool_choice", "functions", "function_call", "suffix", "best_of"};

bool listed(std::string_view name, std::initializer_list<std::span<const std::string_view>> lists) {
  for (auto list : lists) {
    if (std::find(list.begin(), list.end(), name) != list.end()) return true;
  }
  return false;
}

// Never an answer that silently ignores a field: any field this server does not implement (an
// unknown one, or one of OpenAI's, vLLM's or SGLang's it lacks) is a 400 naming it.
void reject_unsupported(const Json& b, std::span<const std::string_view> own) {
  for (const auto& [name, value] : b.items()) {
    if (listed(name, {kSharedFields, own, kStructuredOutputFields})) continue;
    if (listed(name, {kNoOpOnlyFields}) && is_no_op(name, value)) continue;
    bad_request(name,
                "'{}' is not a field this server implements on this endpoint; remove it from the "
                "request (the README lists the supported fields)",
                name);
  }
}

GenerationFields parse_generation_fields(const Json& b, const char* max_tokens_name,
                                         std::span<const std::string_view> own) {
  reject_unsupported(b, own);
  GenerationFields f;
  f.structured = parse_structured_output(b);
  if (auto v = string_field(b, "model")) f.model = *v;
  string_field(b, "user");  // accepted, type-checked, unused
  parse_sampling(b, f.sampling);
  if (auto v = int_field(b, max_tokens_name, 1, kMaxInt)) f.max_tokens = int(*v);
  if (auto v = int_field(b, "n", 1, kMaxChoices)) f.n = int(*v);
  if (auto v = bool_field(b, "stream")) f.stream = *v;
  if (const auto it = b.find("stream_options"); it != b.end() && !it->is_null()) {
    if (!it->is_object()) bad_request("stream_options", "'stream_options' must be an object");
    if (auto v = bool_field(*it, "include_usage")) f.include_usage = *v;
  }
  if (auto v = bool_field(b, "return_token_ids")) f.return_token_ids = *v;
  if (auto v = token_ids_field(b, "resume_token_ids")) f.resume_token_ids = *v;
  if (!f.resume_token_ids.empty() && f.n != 1) {
    bad_request("resume_token_ids", "'resume_token_ids' resumes one choice: send it with n = 1");
  }
  return f;
}

PromptInput prompt_from_json(const Json& p) {
  if (p.is_string()) return p.get<std::string>();
  if (is_token_id_list(p)) return to_token_ids(p, "prompt");
  bad_request("prompt",
              "'prompt' must be a string, a list of strings, a list of token ids or a list of "
              "lists of token ids");
}

std::vector<PromptInput> parse_prompts(const Json& b) {
  const auto it = b.find("prompt");
  if (it == b.end() || it->is_null()) bad_request("prompt", "'prompt' is required");
  const Json& p = *it;
  std::vector<PromptInput> prompts;
  if (p.is_string() || is_token_id_list(p)) {
    prompts.push_back(prompt_from_json(p));
  } else if (p.is_array() && !p.empty()) {
    for (const Json& one : p) prompts.push_back(prompt_from_json(one));
  } else {
    prompt_from_json(p);  // throws with the shape message
  }
  return prompts;
}

// OpenAI content: a string, or a list of parts of which only text parts are supported.
std::string flatten_content(const Json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return "";
  if (!content.is_array()) {
    bad_request("messages", "messages[{}].content must be a string or a list of parts", index);
  }
  std::string text;
  for (const Json& part : content) {
    const bool is_text = part.is_object() && part.value("type", "") == "text" &&
                         part.contains("text") && part["text"].is_string();
    if (!is_text) {
      bad_request("messages", "messages[{}].content: only parts of type 'text' are supported",
                  index);
    }
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

Json parse_messages(const Json& b) {
  const auto it = b.find("messages");
  if (it == b.end() || !it->is_array() || it->empty()) {
    bad_request("messages", "'messages' must be a non-empty list of messages");
  }
  Json messages = Json::array();
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& m = (*it)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      bad_request("messages", "messages[{}] must be an object with a string 'role'", i);
    }
    Json copy = m;
    copy["content"] = flatten_content(m.contains("content") ? m["content"] : Json(), i);
    arguments_to_objects(copy);
    messages.push_back(std::move(copy));
  }
  return messages;
}

}  // namespace

CompletionRequest parse_completion_request(const Json& body) {
  CompletionRequest r;
  r.fields = parse_generation_fields(body, "max_tokens", kCompletionFields);
  r.prompts = parse_prompts(body);
  if (!r.fields.resume_token_ids.empty() && r.prompts.size() != 1) {
    bad_request("resume_token_ids", "'resume_token_ids' resumes one choice: send one prompt");
  }
  // OpenAI's and vLLM's default for completions; a forgotten max_tokens must not hold a slot for
  // the whole context (chat keeps vLLM's default: the rest of the context).
  if (!r.fields.max_tokens) r.fields.max_tokens = kDefaultCompletionTokens;
  if (auto v = bool_field(body, "echo")) r.echo = *v;
  if (auto v = bool_field(body, "add_special_tokens")) r.add_special_tokens = *v;
  if (auto v = int_field(body, "logprobs", 0, SamplingParams::kMaxLogprobs)) {
    r.fields.sampling.logprobs = int(*v);
  }
  if (auto v = int_field(body, "prompt_logprobs", 0, SamplingParams::kMaxLogprobs)) {
    r.prompt_logprobs = int(*v);
  }
  // echo with logprobs scores the prompt as well (OpenAI's legacy completions, lm-eval).
  std::optional<int>& prompt = r.fields.sampling.prompt_logprobs;
  if (r.echo && r.fields.sampling.logprobs) prompt = r.fields.sampling.logprobs;
  if (r.prompt_logprobs) prompt = std::max(prompt.value_or(0), *r.prompt_logprobs);
  return r;
}

ChatRequest parse_chat_request(const Json& body) {
  ChatRequest r;
  const bool has_new_name =
      body.contains("max_completion_tokens") && !body["max_completion_tokens"].is_null();
  r.fields = parse_generation_fields(body, has_new_name ? "max_completion_tokens" : "max_tokens",
                                     kChatFields);
  r.messages = parse_messages(body);
  if (auto v = bool_field(body, "add_generation_prompt")) r.add_generation_prompt = *v;
  if (const auto it = body.find("chat_template_kwargs"); it != body.end() && !it->is_null()) {
    if (!it->is_object())
      bad_request("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    r.template_kwargs = *it;
  }
  const bool logprobs = bool_field(body, "logprobs").value_or(false);
  const auto top = int_field(body, "top_logprobs", 0, SamplingParams::kMaxLogprobs);
  if (top && !logprobs) bad_request("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  r.tools = parse_tools(body);
  if (logprobs) r.fields.sampling.logprobs = int(top.value_or(0));
  return r;
}

}  // namespace shardlm::server
