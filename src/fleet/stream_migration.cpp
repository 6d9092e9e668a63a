// Mid-stream migration: the tracker of a stream's events and the pump that moves it to another
// worker when its worker dies or aborts it (stream_migration.h).
#include "fleet/stream_migration.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "server/sse.h"

namespace shardlm::fleet {

namespace {

using Json = nlohmann::json;
using Kind = UpstreamPiece::Kind;
constexpr auto kPoll = std::chrono::milliseconds(500);
constexpr std::string_view kData = "data: ";

std::string dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The SSE error event and [DONE] that end a stream no worker could finish.
std::string cut_tail(const std::string& why) {
  return server::sse_data(
             dump(Json{{"error", {{"message", why}, {"type", "server_error"}, {"code", 502}}}})) +
         server::sse_done();
}

}  // namespace

bool migratable_stream(const std::string& path, const Json& body) {
  if (path != "/v1/completions" && path != "/v1/chat/completions") return false;
  if (body.value("stream", false) != true) return false;
  if (const auto n = body.find("n"); n != body.end() && !n->is_null() && *n != 1) return false;
  if (path == "/v1/chat/completions") return true;
  const auto p = body.find("prompt");
  // One prompt: a string or a list of token ids (a list of strings or of lists is several).
  return p != body.end() &&
         (p->is_string() || (p->is_array() && !p->empty() && (*p)[0].is_number_integer()));
}

Json with_token_ids(const Json& body) {
  Json b = body;
  b["return_token_ids"] = true;
  return b;
}

Json resume_body(const Json& body, const std::vector<int32_t>& generated) {
  Json b = with_token_ids(body);
  b["resume_token_ids"] = generated;
  return b;
}

std::string MigrationTracker::feed(std::string_view data) {
  partial_.append(data);
  std::string out;
  size_t start = 0;
  for (size_t end; (end = partial_.find("\n\n", start)) != std::string::npos; start = end + 2) {
    out += rewrite(std::string_view(partial_).substr(start, end - start));
  }
  partial_.erase(0, start);
  return out;
}

void MigrationTracker::restart() {
  partial_.clear();
  resumed_ = true;
  aborted_ = false;
}

std::string MigrationTracker::rewrite(std::string_view event) {
  if (aborted_) return "";  // the worker's usage and [DONE] after its abort
  const std::string raw = std::string(event) + "\n\n";
  if (event.substr(0, kData.size()) != kData) return raw;  // a comment or another field
  const std::string_view payload = event.substr(kData.size());
  if (payload == "[DONE]") {
    done_ = true;
    return raw;
  }
  Json j = Json::parse(payload, nullptr, false);
  if (!j.is_object() || !j.contains("choices") || !j["choices"].is_array()) return raw;
  size_t tokens = 0;
  for (Json& c : j["choices"]) {
    if (!c.is_object()) continue;
    if (const auto ids = c.find("token_ids"); ids != c.end()) {
      if (ids->is_array()) {
        for (const Json& t : *ids) {
          if (t.is_number_integer()) tokens_.push_back(t.get<int32_t>()), ++tokens;
        }
      }
      if (!keep_ids_) c.erase("token_ids");
    }
    const auto r = c.find("finish_reason");
    if (r != c.end() && *r == "abort") {
      aborted_ = true;
      *r = nullptr;
    } else if (r != c.end() && !r->is_null()) {
      finished_ = true;
    }
  }
  if (aborted_ && tokens == 0) return "";
  if (!resumed_) {
    if (id_.is_null() && j.contains("id")) id_ = j["id"], created_ = j.value("created", Json());
  } else {
    if (!id_.is_null()) j["id"] = id_;
    if (!created_.is_null()) j["created"] = created_;
  }
  return server::sse_data(dump(j));
}

namespace {

// Relays a migratable stream and moves it to another worker when its worker dies.
class MigratingPump {
 public:
  MigratingPump(StreamStart start, Json body, int limit, MigrationHooks hooks)
      : s_(std::move(start)),
        body_(std::move(body)),
        left_(limit),
        hooks_(std::move(hooks)),
        tracker_(body_.value("return_token_ids", false) == true) {}

  bool operator()(httplib::DataSink& sink) {
    if (!s_.first.empty() && !write(sink, tracker_.feed(s_.first))) return false;
    s_.first.clear();
    while (true) {
      auto piece = s_.call->next(kPoll);
      if (!piece) {
        if (sink.is_writable()) continue;
        s_.call->cancel();
        return false;
      }
      if (piece->kind == Kind::kData) {
        if (!write(sink, tracker_.feed(piece->data))) return false;
        continue;
      }
      const std::string error = piece->kind == Kind::kFailed ? piece->data
                                : tracker_.aborted()
                                    ? std::string("it ended the stream with finish_reason abort")
                                    : std::string("the stream ended before [DONE]");
      if (!tracker_.done() && !cut(sink, error)) {
        if (sink.is_writable()) continue;  // migrated: the next worker's pieces
        s_.call->cancel();
        return false;
      }
      s_.hold.reset();
      sink.done();
      return true;
    }
  }

 private:
  bool write(httplib::DataSink& sink, const std::string& data) {
    if (data.empty() || sink.write(data.data(), data.size())) return true;
    s_.call->cancel();
    return false;
  }

  // The worker cut the stream: false when it moved to another worker, true when it is ended
  // here (everything was generated, or no worker took it).
  bool cut(httplib::DataSink& sink, const std::string& error) {
    s_.hold.reset();  // no longer that worker's load
    if (hooks_.on_cut) hooks_.on_cut(s_.worker, error);
    if (tracker_.finished()) {  // only the usage chunk or [DONE] was lost
      write(sink, server::sse_done());
      return true;
    }
    std::string why;
    if (left_ > 0 && migrate(sink, why)) return false;
    if (why.empty()) why = "the migration limit is reached";
    write(sink, cut_tail(fmt::format("the worker serving this stream failed ({}) and it could not "
                                     "move to another ({}); retry the request",
                                     error, why)));
    return true;
  }

  bool migrate(httplib::DataSink& sink, std::string& why) {
    --left_;
    const std::string from = s_.worker;
    auto next = hooks_.restart(
        resume_body(body_, tracker_.token_ids()), from, [&sink] { return sink.is_writable(); },
        why);
    if (!next) {
      spdlog::warn("fleet: stream from worker {} could not migrate: {}", from, why);
      return false;
    }
    s_ = std::move(*next);
    tracker_.restart();
    if (hooks_.on_migrated) hooks_.on_migrated(from, s_.worker, tracker_.token_ids().size());
    const std::string first = std::move(s_.first);
    s_.first.clear();
    write(sink, tracker_.feed(first));  // a client gone meanwhile is seen by the caller
    return true;
  }

  StreamStart s_;
  Json body_;  // the client's body, with return_token_ids
  int left_;   // migrations left
  MigrationHooks hooks_;
  MigrationTracker tracker_;
};

}  // namespace

void deliver_migrating_stream(StreamStart start, Json body, int limit, MigrationHooks hooks,
                              httplib::Response& res) {
  res.status = 200;
  auto pump =
      std::make_shared<MigratingPump>(std::move(start), std::move(body), limit, std::move(hooks));
  res.set_chunked_content_provider(
      "text/event-stream", [pump](size_t, httplib::DataSink& sink) { return (*pump)(sink); });
}

}  // namespace shardlm::fleet
