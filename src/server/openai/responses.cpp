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

class CompletionFormat : public ResponseFormat {
 public:
  CompletionFormat(ResponseMeta meta, const Tokenizer& t, std::vector<std::string> echo, bool lp)
      : ResponseFormat(std::move(meta), "text_completion", "text_completion"),
        tok_(t),
        echo_(std::move(echo)),
        logprobs_(lp),
        offsets_(echo_.size(), 0) {
    for (size_t i = 0; i < echo_.size(); ++i) offsets_[i] = echo_[i].size();
  }

  Json choice_json(size_t i, const ChoiceResult& c) override {
    Json choice = {{"index", i}, {"text", echo_[i] + c.text}};
    choice["logprobs"] = logprobs_ ? logprobs_json(i, c.logprobs) : Json(nullptr);
    return choice;
  }

  Json chunk(int index, const RequestOutput& out, bool first) override {
    Json r = envelope(true);
    const auto i = static_cast<size_t>(index);
    Json choice = {{"index", index}, {"text", (first ? echo_[i] : std::string()) + out.text}};
    choice["logprobs"] = logprobs_ ? logprobs_json(i, out.logprobs) : Json(nullptr);
    choice["finish_reason"] = finish_json(out);
    choice["stop_reason"] = nullptr;
    r["choices"].push_back(std::move(choice));
    return r;
  }

 private:
  // {"tokens", "token_logprobs", "top_logprobs", "text_offset"}; offsets continue across chunks.
  Json logprobs_json(size_t choice, const std::vector<TokenLogprobs>& lps) {
    Json j = {{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
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
  std::vector<std::string> echo_;
  bool logprobs_;
  std::vector<size_t> offsets_;
};

class ChatFormat : public ResponseFormat {
 public:
  ChatFormat(ResponseMeta meta, const Tokenizer& t, bool lp)
      : ResponseFormat(std::move(meta), "chat.completion", "chat.completion.chunk"),
        tok_(t),
        logprobs_(lp) {}

  Json choice_json(size_t i, const ChoiceResult& c) override {
    Json choice = {{"index", i}, {"message", {{"role", "assistant"}, {"content", c.text}}}};
    choice["logprobs"] = logprobs_ ? logprobs_json(c.logprobs) : Json(nullptr);
    return choice;
  }

  Json chunk(int index, const RequestOutput& out, bool first) override {
    Json r = envelope(true);
    Json delta = Json::object();
    if (first) delta["role"] = "assistant";
    if (first || !out.text.empty()) delta["content"] = out.text;
    Json choice = {{"index", index}, {"delta", std::move(delta)}};
    choice["logprobs"] = logprobs_ ? logprobs_json(out.logprobs) : Json(nullptr);
    choice["finish_reason"] = finish_json(out);
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
    choice["finish_reason"] = finish_reason_name(choices[i].reason);
    choice["stop_reason"] = nullptr;
    r["choices"].push_back(std::move(choice));
  }
  r["usage"] = usage_json(usage);
  return r;
}

Json ResponseFormat::usage_chunk(const Usage& usage) const {
  Json r = envelope(true);
  r["usage"] = usage_json(usage);
  return r;
}

std::unique_ptr<ResponseFormat> completion_format(ResponseMeta meta, const Tokenizer& tokenizer,
                                                  std::vector<std::string> echo_texts,
                                                  bool logprobs) {
  return std::make_unique<CompletionFormat>(std::move(meta), tokenizer, std::move(echo_texts),
                                            logprobs);
}

std::unique_ptr<ResponseFormat> chat_format(ResponseMeta meta, const Tokenizer& tokenizer,
                                            bool logprobs) {
  return std::make_unique<ChatFormat>(std::move(meta), tokenizer, logprobs);
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
