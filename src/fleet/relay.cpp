// first_output and deliver_answer: an upstream's answer passed on to the client (relay.h).
#include "fleet/relay.h"

#include <nlohmann/json.hpp>

#include "server/openai/api_error.h"
#include "server/sse.h"

namespace shardlm::fleet {

namespace {

using Json = nlohmann::json;
using Kind = UpstreamPiece::Kind;
constexpr auto kPoll = std::chrono::milliseconds(500);

// The SSE error event and [DONE] that end a stream cut by its upstream.
std::string cut_stream_tail(const std::string& tail, const std::string& why) {
  std::string out;
  if (tail.size() < 2 || tail.compare(tail.size() - 2, 2, "\n\n") != 0) out += "\n\n";
  out += server::sse_data(
      Json{{"error", {{"message", why}, {"type", "server_error"}, {"code", 502}}}}.dump());
  return out + server::sse_done();
}

// Relays a committed stream: the first bytes, then every piece as it arrives.
class StreamPump {
 public:
  StreamPump(std::shared_ptr<UpstreamCall> call, std::shared_ptr<void> hold, std::string first,
             RelayFailure on_failure)
      : call_(std::move(call)),
        hold_(std::move(hold)),
        pending_(std::move(first)),
        on_failure_(std::move(on_failure)) {}

  bool operator()(httplib::DataSink& sink) {
    if (!pending_.empty() && !write(sink, pending_)) return false;
    pending_.clear();
    while (true) {
      auto piece = call_->next(kPoll);
      if (!piece) {
        if (sink.is_writable()) continue;
        call_->cancel();
        return false;
      }
      if (piece->kind == Kind::kData) {
        if (!write(sink, piece->data)) return false;
        continue;
      }
      hold_.reset();  // no longer the upstream's load, before the client sees the end
      if (piece->kind == Kind::kFailed) finish_cut(sink, piece->data);
      sink.done();
      return true;
    }
  }

 private:
  bool write(httplib::DataSink& sink, const std::string& data) {
    const size_t keep = tail_.size() + data.size() > 64 ? tail_.size() + data.size() - 64 : 0;
    tail_ = (tail_ + data).substr(keep);
    if (sink.write(data.data(), data.size())) return true;
    call_->cancel();
    return false;
  }
  void finish_cut(httplib::DataSink& sink, const std::string& error) {
    if (on_failure_) on_failure_("failed_mid_stream", error);
    if (tail_.find("[DONE]") != std::string::npos) return;
    const std::string end = cut_stream_tail(
        tail_, fmt::format("the worker serving this stream failed ({}); retry the request", error));
    sink.write(end.data(), end.size());
  }

  std::shared_ptr<UpstreamCall> call_;
  std::shared_ptr<void> hold_;
  std::string pending_;
  std::string tail_;  // the last bytes written, to end a cut event cleanly
  RelayFailure on_failure_;
};

}  // namespace

FirstOutput first_output(UpstreamCall& call, const server::HttpRequest& req) {
  FirstOutput f;
  while (true) {
    auto piece = call.next(kPoll);
    if (!piece) {
      if (!req.client_connected()) {
        f.error = "client left";
        return f;
      }
      continue;
    }
    if (piece->kind == Kind::kHead) {
      f.status = piece->status;
      f.content_type = piece->content_type;
      if (f.status == 503) {  // draining or unhealthy: another upstream may serve it
        f.error = "the worker answered 503 (draining or unhealthy)";
        return f;
      }
      continue;
    }
    f.ok = piece->kind != Kind::kFailed;
    f.ended = piece->kind == Kind::kEnd;
    f.refused = piece->refused;
    (piece->kind == Kind::kFailed ? f.error : f.data) = std::move(piece->data);
    if (f.ok && f.status == 0) {
      f.ok = false;
      f.error = "no status line";
    }
    return f;
  }
}

void deliver_answer(FirstOutput& f, std::shared_ptr<UpstreamCall> call, std::shared_ptr<void> hold,
                    RelayFailure on_failure, httplib::Response& res) {
  res.status = f.status;
  const std::string ctype = f.content_type.empty() ? "application/json" : f.content_type;
  if (ctype.rfind("text/event-stream", 0) == 0) {
    auto pump = std::make_shared<StreamPump>(std::move(call), std::move(hold), std::move(f.data),
                                             std::move(on_failure));
    res.set_chunked_content_provider(
        ctype, [pump](size_t, httplib::DataSink& sink) { return (*pump)(sink); });
    return;
  }
  std::string body = std::move(f.data);
  while (!f.ended) {
    auto piece = call->next(std::chrono::hours(1));
    if (!piece || piece->kind == Kind::kFailed) {
      const std::string why = piece ? piece->data : "timeout";
      if (on_failure) on_failure("failed_mid_response", why);
      throw server::ApiError(502, fmt::format("the worker serving this request failed before it "
                                              "finished ({}); retry the request",
                                              why));
    }
    if (piece->kind == Kind::kData) body += piece->data;
    f.ended = piece->kind == Kind::kEnd;
  }
  res.set_content(body, ctype);
}

}  // namespace shardlm::fleet
