// Request bodies and chunk timing.
#include "serve_bench/request_runner.h"

#include "serve_bench/sse_client.h"

namespace shardlm::serve_bench {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The text of a chunk's first choice ("text" or delta.content), empty when it has none.
std::string chunk_text(const nlohmann::json& choice, Api api) {
  const nlohmann::json* field = nullptr;
  if (api == Api::kCompletions) {
    if (choice.contains("text")) field = &choice["text"];
  } else if (choice.contains("delta") && choice["delta"].is_object() &&
             choice["delta"].contains("content")) {
    field = &choice["delta"]["content"];
  }
  return field && field->is_string() ? field->get<std::string>() : std::string();
}

// The state of one stream: its timing and the finish reason it ended with.
struct Timing {
  Clock::time_point sent, last;
  bool first = true;
  std::string finish_reason;
};

// Handles one data payload; returns false (with reason) for an error object or bad JSON.
bool on_payload(std::string_view payload, Api api, Timing& t, RequestRecord& r,
                std::string& reason) {
  const auto now = Clock::now();
  const auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    reason = "the server sent a data line that is not a JSON object";
    return false;
  }
  if (j.contains("error")) {
    reason = "server error in the stream: " + error_message(j.dump());
    return false;
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    const auto& u = j["usage"];
    r.prompt_tokens = u.value("prompt_tokens", r.prompt_tokens);
    r.output_tokens = u.value("completion_tokens", r.output_tokens);
    r.usage_reported = u.contains("completion_tokens");
  }
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return true;
  const auto& choice = j["choices"][0];
  if (choice.is_object() && choice.contains("finish_reason") &&
      choice["finish_reason"].is_string()) {
    t.finish_reason = choice["finish_reason"].get<std::string>();
  }
  const std::string text = chunk_text(choice, api);
  if (text.empty()) return true;  // a role-only or finish-only chunk carries no token
  if (t.first) {
    r.ttft = seconds(now - t.sent);
    t.first = false;
  } else {
    r.itl.push_back(seconds(now - t.last));
  }
  t.last = now;
  r.generated_text += text;
  return true;
}

}  // namespace

Api RequestOptions::api() const {
  const std::string chat = "chat/completions";
  return path.size() >= chat.size() &&
                 path.compare(path.size() - chat.size(), chat.size(), chat) == 0
             ? Api::kChat
             : Api::kCompletions;
}

nlohmann::json request_body(const SampleRequest& s, const RequestOptions& o) {
  nlohmann::json body = {{"model", o.model},
                         {"max_tokens", s.output_len},
                         {"stream", true},
                         {"stream_options", {{"include_usage", true}}},
                         {"temperature", o.temperature}};
  if (o.ignore_eos) body["ignore_eos"] = true;
  if (o.api() == Api::kChat) {
    body["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", s.prompt}}});
  } else if (!s.prompt_ids.empty()) {
    body["prompt"] = s.prompt_ids;
  } else {
    body["prompt"] = s.prompt;
  }
  body.update(o.extra_body);
  return body;
}

RequestRecord run_request(httplib::Client& client, const SampleRequest& s, const RequestOptions& o,
                          Clock::time_point run_start) {
  RequestRecord r;
  r.prompt_tokens = s.prompt_len;
  r.expected_output_tokens = s.output_len;
  const std::string body = request_body(s, o).dump();
  const Api api = o.api();
  Timing t;
  std::string reason;
  t.sent = Clock::now();
  r.start = seconds(t.sent - run_start);
  const StreamOutcome out = stream_post(
      client, o.endpoint, o.path, body,
      [&](std::string_view payload) { return on_payload(payload, api, t, r, reason); }, &reason);
  r.e2e = seconds(Clock::now() - t.sent);
  r.ok = out.ok;
  r.error = out.error;
  if (r.ok && t.first) {
    r.ok = false;
    r.error = "the response streamed no tokens";
  }
  if (r.ok && t.finish_reason == "abort") {  // the server ended it early (e.g. its group broke)
    r.ok = false;
    r.error = "the server ended the stream early (finish_reason \"abort\")";
  }
  return r;
}

}  // namespace shardlm::serve_bench
