// Completion and chat response shapes.
#include "server/openai/responses.h"

#include <fmt/format.h>

#include <random>

namespace shardlm::server {

namespace {

Json bytes_json(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

Json finish_json(const RequestOutput& out) {
  return out.finish_reason ? Json(finish_reason_name(*out.finish_reason)) : Json(nullptr);
}

// vLLM's prompt_logprobs: null for the first token, then {"<id>": {logprob, rank, decoded_token}}
// with the prompt token and its alternatives.
Json vllm_prompt_logprobs(const Tokenizer& tok, const std::vector<TokenLogprobs>& lps) {
  Json list = Json::array({nullptr});
  for (const TokenLogprobs& lp : lps) {
    Json entry = Json::object();
    entry[std::to_string(lp.token)] = {
        {"logprob", lp.logprob}, {"rank", lp.rank}, {"decoded_token", tok.token_bytes(lp.token, false)}};
    for (size_t k = 0; k < lp.top.size(); ++k) {
      const auto& [id, v] = lp.top[k];
      entry[std::to_string(id)] = {
          {"logprob", v}, {"rank", k + 1}, {"decoded_token", tok.token_bytes(id, false)}};
    }
    list.push_back(std::move(entry));
  }
  return list;
}

class CompletionFormat : public ResponseFormat {
 public:
  CompletionFormat(ResponseMeta meta, const Tokenizer& t, std::vector<CompletionPrompt> prompts,
                   CompletionOptions options)
      : ResponseFormat(std::move(meta), "text_completion", "text_completion"),
        tok_(t),
        prompts_(std::move(prompts)),
        options_(options),
        offsets_(prompts_.size(), 0) {
    for (size_t i = 0; i < prompts_.size(); ++i) offsets_[i] = prompts_[i].echo_text.size();
  }

  Json choice_json(size_t i, const ChoiceResult& c) override {
    Json choice = {{"index", i}, {"text", prompts_[i].echo_text + c.text}};
    choice["logprobs"] =
        options_.logprobs ? logprobs_json(i, c.logprobs, c.prompt_logprobs, true) : Json(nullptr);
    if (options_.prompt_logprobs) choice["prompt_logprobs"] = vllm_prompt_logprobs(tok_, c.prompt_logprobs);
    return choice;
  }

  Json chunk(int index, const RequestOutput& out, bool first) override {
    Json r = envelope(true);
    const auto i = static_cast<size_t>(index);
    Json choice = {{"index", index},
                   {"text", (first ? prompts_[i].echo_text : std::string()) + out.text}};
    choice["logprobs"] = options_.logprobs
                             ? logprobs_json(i, out.logprobs, out.prompt_logprobs, first)
                             : Json(nullptr);
    if (options_.prompt_logprobs && first) {
      choice["prompt_logprobs"] = vllm_prompt_logprobs(tok_, out.prompt_logprobs);
    }
    choice["finish_reason"] = finish_json(out);
    choice["stop_reason"] = nullptr;
    r["choices"].push_back(std::move(choice));
    return r;
  }

 private:
  // echo with logprobs: the prompt's tokens first, the first one's logprob null, offsets from 0.
  void add_prompt(Json& j, size_t choice, const std::vector<TokenLogprobs>& prompt_lps) const {
    const std::vector<int32_t>& ids = prompts_[choice].ids;
    size_t offset = 0;
    for (size_t k = 0; k < ids.size(); ++k) {
      const std::string text = tok_.token_bytes(ids[k], false);
      j["tokens"].push_back(text);
      j["text_offset"].push_back(offset);
      offset += text.size();
      if (k == 0 || k - 1 >= prompt_lps.size()) {
        j["token_logprobs"].push_back(nullptr);
        j["top_logprobs"].push_back(nullptr);
        continue;
      }
      const TokenLogprobs& lp = prompt_lps[k - 1];
      j["token_logprobs"].push_back(lp.logprob);
      Json top = Json::object();
      for (const auto& [id, v] : lp.top) top[tok_.token_bytes(id, false)] = v;
      j["top_logprobs"].push_back(std::move(top));
    }
  }

  // {"tokens", "token_logprobs", "top_logprobs", "text_offset"}; offsets continue across chunks.
  Json logprobs_json(size_t choice, const std::vector<TokenLogprobs>& lps,
                     const std::vector<TokenLogprobs>& prompt_lps, bool first) {
    Json j = {{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
    if (first && options_.echo_logprobs) add_prompt(j, choice, prompt_lps);
    for (const TokenLogprobs& lp : lps) {
      const std::string text = tok_.token_bytes(lp.token, false);
      j["tokens"].push_back(text);
      j["token_logprobs"].push_back(lp.logprob);
      Json top = Json::object();
      for (const auto& [id, v] : lp.top) top[tok_.token_bytes(id, false)] = v;
      j["top_logprobs"].push_back(std::move(top));
      j["text_offset"].push_back(offsets_[choice]);
      offsets_[choice] += text.size();
    }
    return j;
  }

  const Tokenizer& tok_;
  std::vector<CompletionPrompt> prompts_;
  CompletionOptions options_;
  std::vector<size_t> offsets_;
};

// An OpenAI tool call: {"id", "type": "function", "function": {"name", "arguments"}}.
Json tool_call_json(const ToolCall& call) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return {{"id", fmt::format("call_{:016x}", rng())},
          {"type", "function"},
          {"function", {{"name", call.name}, {"arguments", call.arguments}}}};
}

// Streamed: {"index", "id", "type", "function": {"name", "arguments"}} first, then
// {"index", "function": {"arguments"}} pieces; one entry per call in a chunk.
Json tool_call_deltas_json(const std::vector<ToolCallDelta>& deltas) {
  Json out = Json::array();
  for (const ToolCallDelta& d : deltas) {
    if (!d.first && !out.empty() && out.back()["index"] == d.index) {
      out.back()["function"]["arguments"] =
          out.back()["function"]["arguments"].get<std::string>() + d.arguments;
      continue;
    }
    Json call = d.first ? tool_call_json({d.name, d.arguments})
                        : Json{{"function", {{"arguments", d.arguments}}}};
    call["index"] = d.index;
    out.push_back(std::move(call));
  }
  return out;
}

class ChatFormat : public ResponseFormat {
 public:
  ChatFormat(ResponseMeta meta, const Tokenizer& t, bool lp, ChatOutputOptions output)
      : ResponseFormat(std::move(meta), "chat.completion", "chat.completion.chunk"),
        tok_(t),
        logprobs_(lp),
        output_(output) {}

  Json choice_json(size_t i, const ChoiceResult& c) override {
    const ChatParts parts = split_chat_output(output_, c.text);
    Json message = {{"role", "assistant"}};
    message["content"] = parts.content.empty() && !parts.calls.empty() ? Json(nullptr)
                                                                       : Json(parts.content);
    if (output_.reasoning) {
      message["reasoning_content"] =
          parts.reasoning.empty() ? Json(nullptr) : Json(parts.reasoning);
    }
    if (!parts.calls.empty()) {
      message["tool_calls"] = Json::array();
      for (const ToolCall& call : parts.calls) message["tool_calls"].push_back(tool_call_json(call));
    }
    called_.resize(std::max(called_.size(), i + 1), false);
    called_[i] = !parts.calls.empty();
    Json choice = {{"index", i}, {"message", std::move(message)}};
    choice["logprobs"] = logprobs_ ? logprobs_json(c.logprobs) : Json(nullptr);
    return choice;
  }

  const char* finish_reason(size_t i, const ChoiceResult& c) override {
    const bool called = i < called_.size() && called_[i];
    return called && c.reason == RequestFinishReason::kStop ? "tool_calls"
                                                            : finish_reason_name(c.reason);
  }

  Json chunk(int index, const RequestOutput& out, bool first) override {
    const auto i = static_cast<size_t>(index);
    while (splitters_.size() <= i) splitters_.emplace_back(output_);
    ChatParts parts = splitters_[i].push(out.text);
    if (out.finish_reason) {
      ChatParts rest = splitters_[i].finish();
      parts.reasoning += rest.reasoning;
      parts.content += rest.content;
      parts.calls = std::move(rest.calls);
      for (ToolCallDelta& d : rest.call_deltas) parts.call_deltas.push_back(std::move(d));
    }
    Json delta = Json::object();
    if (first) delta["role"] = "assistant";
    if (first || !parts.content.empty()) delta["content"] = parts.content;
    if (!parts.reasoning.empty()) delta["reasoning_content"] = parts.reasoning;
    if (!parts.call_deltas.empty()) delta["tool_calls"] = tool_call_deltas_json(parts.call_deltas);
    Json r = envelope(true);
    Json choice = {{"index", index}, {"delta", std::move(delta)}};
    choice["logprobs"] = logprobs_ ? logprobs_json(out.logprobs) : Json(nullptr);
    const bool called = !parts.calls.empty() && out.finish_reason == RequestFinishReason::kStop;
    choice["finish_reason"] = called ? Json("tool_calls") : finish_json(out);
    r["choices"].push_back(std::move(choice));
    return r;
  }

 private:
  Json entry(int32_t id, float logprob) const {
    const std::string text = tok_.token_bytes(id, false);
    return {{"token", text}, {"logprob", logprob}, {"bytes", bytes_json(text)}};
  }

  Json logprobs_json(const std::vector<TokenLogprobs>& lps) const {
    Json content = Json::array();
    for (const TokenLogprobs& lp : lps) {
      Json e = entry(lp.token, lp.logprob);
      e["top_logprobs"] = Json::array();
      for (const auto& [id, v] : lp.top) e["top_logprobs"].push_back(entry(id, v));
      content.push_back(std::move(e));
    }
    return {{"content", std::move(content)}};
  }

  const Tokenizer& tok_;
  bool logprobs_;
  ChatOutputOptions output_;
  std::vector<ChatStreamSplitter> splitters_;  // per choice, streaming
  std::vector<bool> called_;                   // per choice: it made tool calls
};

}  // namespace

ResponseFormat::ResponseFormat(ResponseMeta meta, const char* object, const char* chunk_object)
    : meta_(std::move(meta)), object_(object), chunk_object_(chunk_object) {}

Json ResponseFormat::envelope(bool is_chunk) const {
  return {{"id", meta_.id},
          {"object", is_chunk ? chunk_object_ : object_},
          {"created", meta_.created},
          {"model", meta_.model},
          {"choices", Json::array()}};
}

Json ResponseFormat::response(const std::vector<ChoiceResult>& choices, const Usage& usage) {
  Json r = envelope(false);
  for (size_t i = 0; i < choices.size(); ++i) {
    Json choice = choice_json(i, choices[i]);
    choice["finish_reason"] = finish_reason(i, choices[i]);
    choice["stop_reason"] = nullptr;
    r["choices"].push_back(std::move(choice));
  }
  r["usage"] = usage_json(usage);
  return r;
}

const char* ResponseFormat::finish_reason(size_t, const ChoiceResult& c) {
  return finish_reason_name(c.reason);
}

Json ResponseFormat::usage_chunk(const Usage& usage) const {
  Json r = envelope(true);
  r["usage"] = usage_json(usage);
  return r;
}

std::unique_ptr<ResponseFormat> completion_format(ResponseMeta meta, const Tokenizer& tokenizer,
                                                  std::vector<CompletionPrompt> prompts,
                                                  CompletionOptions options) {
  return std::make_unique<CompletionFormat>(std::move(meta), tokenizer, std::move(prompts),
                                            options);
}

std::unique_ptr<ResponseFormat> chat_format(ResponseMeta meta, const Tokenizer& tokenizer,
                                            bool logprobs, ChatOutputOptions output) {
  return std::make_unique<ChatFormat>(std::move(meta), tokenizer, logprobs, output);
}

Json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

const char* finish_reason_name(RequestFinishReason reason) {
  return to_string(reason);
}

std::string make_response_id(const char* prefix, int64_t request_id) {
  static const uint64_t process_tag = std::mt19937_64{std::random_device{}()}();
  return fmt::format("{}{:016x}-{}", prefix, process_tag, request_id);
}

std::string to_wire(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace shardlm::server
