// HttpServer: the connection loop, routing with 404/405, auth before the body, error mapping.
#include "server/http_server.h"

#include <spdlog/spdlog.h>
#include <strings.h>

#include "comm/elastic_task_queue.h"
#include "core/error.h"
#include "core/secret_compare.h"
#include "server/http_response_writer.h"
#include "server/openai/api_error.h"
#include "server/openai/responses.h"

namespace shardlm::server {

namespace {

using Clock = SocketStream::Clock;

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param = {}, const std::string& code = {}) {
  res.status = status;
  res.headers.clear();
  res.set_content(to_wire(error_body(status, message, param, code)), "application/json");
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 only when asked to keep it.
bool wants_keep_alive(const HttpRequest& req) {
  const std::string connection = lower(req.get_header_value("Connection"));
  if (connection.find("close") != std::string::npos) return false;
  return req.version == "HTTP/1.1" || connection.find("keep-alive") != std::string::npos;
}

bool announces_body(const HttpRequest& req) {
  const std::string length = req.get_header_value("Content-Length");
  return req.has_header("Transfer-Encoding") || (!length.empty() && length != "0");
}

}  // namespace

HttpServer::HttpServer(HttpOptions options)
    : options_(std::move(options)),
      pool_(std::make_unique<comm::ElasticTaskQueue>(options_.max_threads)) {
  limits_.max_body_bytes = options_.max_body_bytes;
  limits_.head_timeout = millis(options_.head_timeout);
  limits_.body_timeout = millis(options_.body_timeout);
}

HttpServer::~HttpServer() {
  stop();
  pool_->shutdown();
}

void HttpServer::add(std::string method, const std::string& path, Handler handler, bool needs_key) {
  routes_.push_back(Route{std::move(method), std::regex(path), std::move(handler), needs_key});
}

void HttpServer::get(const std::string& path, Handler handler, bool needs_key) {
  add("GET", path, std::move(handler), needs_key);
}

void HttpServer::post(const std::string& path, Handler handler, bool needs_key) {
  add("POST", path, std::move(handler), needs_key);
}

bool HttpServer::authorised(const httplib::Request& req) const {
  if (options_.api_key.empty()) return true;
  const std::string auth = req.get_header_value("Authorization");
  const size_t space = auth.find(' ');
  if (space == std::string::npos || strcasecmp(auth.substr(0, space).c_str(), "bearer") != 0) {
    return false;  // RFC 7235: the scheme is case-insensitive
  }
  const size_t start = auth.find_first_not_of(' ', space);
  return start != std::string::npos && secret_equals(auth.substr(start), options_.api_key);
}

const HttpServer::Route* HttpServer::find_route(HttpRequest& req, httplib::Response& res) const {
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  std::string allowed;
  for (const Route& r : routes_) {
    std::smatch m;
    if (!std::regex_match(req.path, m, r.pattern)) continue;
    if (r.method == method) {
      req.matches = m;
      return &r;
    }
    allowed += (allowed.empty() ? "" : ", ") + r.method;
  }
  if (allowed.empty()) {
    send_error(res, 404, "no such route; see the OpenAI API paths under /v1");
  } else {
    send_error(
        res, 405,
        fmt::format("method {} is not allowed on {}; use {}", req.method, req.path, allowed));
    res.set_header("Allow", allowed);
  }
  return nullptr;
}

void HttpServer::run_handler(const Route& route, const HttpRequest& req,
                             httplib::Response& res) const {
  res.status = 200;
  try {
    route.handler(req, res);
  } catch (const ApiError& e) {
    send_error(res, e.status, e.what(), e.param, e.code);
  } catch (const Error& e) {
    send_error(res, 400, e.what());
  } catch (const std::exception& e) {
    spdlog::error("{} {}: {}", req.method, req.path, e.what());
    send_error(res, 500, "internal server error; the server log has the details");
  }
}

// Answers a request that could not be read (nothing when the client is gone); the connection
// then closes. Always false, what serve_request returns for it.
bool HttpServer::refuse_and_close(SocketStream& stream, const HttpRequest& req,
                                  const HttpReadError& e) const {
  if (e.status == 0) return false;
  httplib::Response res;
  send_error(res, e.status, e.message);
  write_response(stream, req, res, false, limits_.write_timeout);
  return false;
}

// One request and its response; false when the connection must close.
bool HttpServer::serve_request(SocketStream& stream) {
  HttpRequest req;
  httplib::Response res;
  if (auto e = read_request_head(stream, limits_, req)) return refuse_and_close(stream, req, *e);
  const bool keep_alive = wants_keep_alive(req) && !stopping_;
  const Route* route = find_route(req, res);
  if (route && route->needs_key && !authorised(req)) {
    send_error(res, 401,
               "missing or incorrect API key; send the header 'Authorization: Bearer <key>' with "
               "the key the server was started with (--api-key)",
               "", "invalid_api_key");
    route = nullptr;
  }
  if (!route) {  // answered without reading a body: then the connection cannot be reused
    const bool reusable = keep_alive && !announces_body(req);
    return write_response(stream, req, res, reusable, limits_.write_timeout) && reusable;
  }
  if (auto e = read_request_body(stream, limits_, req)) return refuse_and_close(stream, req, *e);
  req.client_connected = [&stream] { return stream.peer_connected(); };
  run_handler(*route, req, res);
  if (res.status == kClientClosedRequest) return false;
  return write_response(stream, req, res, keep_alive, limits_.write_timeout) && keep_alive;
}

void HttpServer::serve_connection(int fd) {
  SocketStream stream(fd, stopping_);
  auto idle = millis(options_.head_timeout);  // the first request may be slow to start
  while (!stopping_) {
    if (stream.wait_readable(Clock::now() + idle) != SocketStream::ReadStatus::kOk) return;
    if (!serve_request(stream)) return;
    idle = millis(options_.keep_alive_timeout);
  }
}

int HttpServer::bind() {
  return listener_.bind(options_.host, options_.port);
}

bool HttpServer::serve() {
  const bool ok = listener_.accept_loop(
      stopping_, [this](int fd) { pool_->enqueue([this, fd] { serve_connection(fd); }); });
  pool_->shutdown();  // open connections see stopping_ and end
  return ok;
}

void HttpServer::stop() {
  stopping_ = true;
}

}  // namespace shardlm::server
