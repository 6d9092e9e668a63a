// Streaming POST over httplib's content receiver with an overall deadline.
#include "serve_bench/sse_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "serve_bench/sse_parser.h"

namespace shardlm::serve_bench {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxErrorBody = 4096;

struct StreamState {
  SseParser parser;
  bool done = false;
  bool timed_out = false;
  bool stopped = false;  // on_event returned false
  std::string error_body;
};

httplib::Request make_request(const Endpoint& e, const std::string& path, const std::string& body) {
  httplib::Request req;
  req.method = "POST";
  req.path = e.prefix + path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  return req;
}

StreamOutcome outcome(const StreamState& s, bool sent, httplib::Error err, int status,
                      const Endpoint& e, const std::string* stop_reason) {
  StreamOutcome o;
  o.status = status;
  if (status != 0 && (status < 200 || status >= 300)) {
    o.error = "HTTP " + std::to_string(status) + ": " + error_message(s.error_body);
  } else if (s.timed_out) {
    o.error = fmt::format("timed out after {:g} s (--timeout)", e.timeout);
  } else if (s.stopped) {
    o.error = stop_reason && !stop_reason->empty() ? *stop_reason : "stopped by the client";
  } else if (!sent) {
    o.error = describe(err);
  } else if (!s.done) {
    o.error = "the stream ended before data: [DONE] (server stopped mid-response?)";
  } else {
    o.ok = true;
  }
  return o;
}

}  // namespace

StreamOutcome stream_post(httplib::Client& client, const Endpoint& e, const std::string& path,
                          const std::string& json_body, const OnEvent& on_event,
                          std::string* stop_reason) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(e.timeout);
  StreamState s;
  int status = 0;
  httplib::Request req = make_request(e, path, json_body);
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (status < 200 || status >= 300) {  // an error body: keep the start for the message
      const size_t room = kMaxErrorBody - std::min(kMaxErrorBody, s.error_body.size());
      s.error_body.append(data, std::min(n, room));
      return true;
    }
    if (Clock::now() > deadline) {
      s.timed_out = true;
      return false;
    }
    return s.parser.feed(std::string_view(data, n), [&](std::string_view payload) {
      if (payload == "[DONE]") s.done = true;
      if (s.done) return true;
      s.stopped = !on_event(payload);
      return !s.stopped;
    });
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = client.send(req, res, err);
  if (sent) status = res.status;
  if (!sent && Clock::now() >= deadline) s.timed_out = true;
  return outcome(s, sent, err, status, e, stop_reason);
}

}  // namespace shardlm::serve_bench
