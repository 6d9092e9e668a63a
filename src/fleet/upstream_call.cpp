// The relay thread of an UpstreamCall.
#include "fleet/upstream_call.h"

#include <thread>

namespace shardlm::fleet {

struct UpstreamCall::State {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<UpstreamPiece> pieces;
  bool cancelled = false;

  bool push(UpstreamPiece p) {
    std::lock_guard lock(mutex);
    pieces.push_back(std::move(p));
    ready.notify_all();
    return !cancelled;
  }
};

namespace {

void relay(std::shared_ptr<UpstreamCall::State> st, std::string base_url, httplib::Request req) {
  using Kind = UpstreamPiece::Kind;
  httplib::Client cli(base_url);
  cli.set_connection_timeout(std::chrono::seconds(2));
  cli.set_read_timeout(std::chrono::hours(1));  // a long non-streamed generation
  cli.set_write_timeout(std::chrono::seconds(30));
  cli.set_keep_alive(false);
  cli.set_tcp_nodelay(true);  // the request goes out at once, not after a delayed ACK
  req.response_handler = [st](const httplib::Response& r) {
    UpstreamPiece p{Kind::kHead, r.status, r.get_header_value("Content-Type"), {}, false};
    return st->push(std::move(p));
  };
  req.content_receiver = [st](const char* data, size_t n, uint64_t, uint64_t) {
    return st->push({Kind::kData, 0, {}, std::string(data, n), false});
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  const bool ok = cli.send(req, res, error);
  if (ok) {
    st->push({Kind::kEnd, 0, {}, {}, false});
    return;
  }
  const bool refused = error == httplib::Error::Connection;
  st->push({Kind::kFailed, 0, {}, httplib::to_string(error), refused});
}

}  // namespace

std::shared_ptr<UpstreamCall> UpstreamCall::start(const std::string& base_url,
                                                  const std::string& method,
                                                  const std::string& path, const std::string& body,
                                                  const httplib::Headers& headers) {
  auto st = std::make_shared<State>();
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers = headers;
  if (method != "GET") {
    req.body = body;
    req.set_header("Content-Type", "application/json");
  }
  std::thread(relay, st, base_url, std::move(req)).detach();  // ends at the worker's next chunk
  return std::shared_ptr<UpstreamCall>(new UpstreamCall(st));
}

UpstreamCall::~UpstreamCall() { cancel(); }

std::optional<UpstreamPiece> UpstreamCall::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mutex);
  if (!state_->ready.wait_for(lock, timeout, [this] { return !state_->pieces.empty(); })) {
    return std::nullopt;
  }
  UpstreamPiece p = std::move(state_->pieces.front());
  state_->pieces.pop_front();
  return p;
}

void UpstreamCall::cancel() {
  std::lock_guard lock(state_->mutex);
  state_->cancelled = true;
}

}  // namespace shardlm::fleet
