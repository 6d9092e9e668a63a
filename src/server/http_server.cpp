// HttpServer: routes wrapped with auth and error mapping.
#include "server/http_server.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "server/elastic_task_queue.h"
#include "server/openai/api_error.h"
#include "server/openai/responses.h"

namespace shardlm::server {

namespace {

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param = {}, const std::string& code = {}) {
  res.status = status;
  res.set_content(to_wire(error_body(status, message, param, code)), "application/json");
}

std::string default_message(int status) {
  switch (status) {
    case 404:
      return "no such route; see the OpenAI API paths under /v1";
    case 405:
      return "method not allowed on this path";
    case 413:
      return "the request body is too large";
    default:
      return fmt::format("HTTP error {}", status);
  }
}

// Constant time in the length of the expected key.
bool same_key(const std::string& given, const std::string& expected) {
  unsigned diff = given.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

}  // namespace

HttpServer::HttpServer(HttpOptions options) : options_(std::move(options)) {
  const size_t max_threads = options_.max_threads;
  server_.new_task_queue = [max_threads] { return new ElasticTaskQueue(max_threads); };
  server_.set_payload_max_length(options_.max_body_bytes);
  server_.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        send_error(res, res.status, default_message(res.status));
        return httplib::Server::HandlerResponse::Handled;
      }));
  server_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send_error(res, 500, "internal server error");
      });
}

HttpServer::~HttpServer() {
  stop();
}

bool HttpServer::authorised(const httplib::Request& req) const {
  if (options_.api_key.empty()) return true;
  const std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  return auth.rfind(prefix, 0) == 0 && same_key(auth.substr(prefix.size()), options_.api_key);
}

HttpServer::Handler HttpServer::guarded(Handler handler, bool needs_key) const {
  return [this, handler = std::move(handler), needs_key](const httplib::Request& req,
                                                         httplib::Response& res) {
    if (needs_key && !authorised(req)) {
      send_error(res, 401,
                 "missing or incorrect API key; send the header 'Authorization: Bearer <key>' "
                 "with the key the server was started with (--api-key)",
                 "", "invalid_api_key");
      return;
    }
    try {
      handler(req, res);
    } catch (const ApiError& e) {
      send_error(res, e.status, e.what(), e.param, e.code);
    } catch (const Error& e) {
      send_error(res, 400, e.what());
    } catch (const std::exception& e) {
      spdlog::error("{} {}: {}", req.method, req.path, e.what());
      send_error(res, 500, fmt::format("internal error: {}", e.what()));
    }
  };
}

void HttpServer::get(const std::string& path, Handler handler, bool needs_key) {
  server_.Get(path, guarded(std::move(handler), needs_key));
}

void HttpServer::post(const std::string& path, Handler handler, bool needs_key) {
  server_.Post(path, guarded(std::move(handler), needs_key));
}

int HttpServer::bind() {
  if (options_.port == 0) {
    const int port = server_.bind_to_any_port(options_.host);
    if (port <= 0) fail("cannot listen on {}: no free port", options_.host);
    return port;
  }
  if (!server_.bind_to_port(options_.host, options_.port)) {
    fail(
        "cannot listen on {}:{}: the address is in use or not local; pick another --port or "
        "--host",
        options_.host, options_.port);
  }
  return options_.port;
}

bool HttpServer::serve() {
  return server_.listen_after_bind();
}

void HttpServer::stop() {
  if (server_.is_running()) server_.stop();
}

}  // namespace shardlm::server
