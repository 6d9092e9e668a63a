// The HTTP transport of the API server: our own HTTP/1.1 connection loop (keep-alive, pipelined
// requests, deadlines for headers and body, a body limit that chunked bodies obey too, the API key
// checked before any body is read) on an elastic thread pool, with routes that receive an
// HttpRequest and fill an httplib::Response. Every error (ours, 404, 405, 413, an unexpected
// exception) is answered with an OpenAI-style JSON error body.
#pragma once

#include <httplib.h>

#include <atomic>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "server/http_listener.h"
#include "server/http_request.h"
#include "server/http_request_reader.h"

namespace shardlm::comm {
class ElasticTaskQueue;
}  // namespace shardlm::comm

namespace shardlm::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;      // 0 = any free port
  std::string api_key;  // empty = no key required
  size_t max_body_bytes = size_t{32} << 20;
  size_t max_threads = 4096;       // concurrent connections (each open stream holds one)
  double head_timeout = 30;        // seconds from a request's first byte to the end of its headers
  double body_timeout = 120;       // seconds to receive a request body
  double keep_alive_timeout = 10;  // seconds an idle keep-alive connection stays open
};

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, httplib::Response&)>;

  explicit HttpServer(HttpOptions options);
  ~HttpServer();

  // `path` is a regular expression over the decoded path (groups land in req.matches).
  void get(const std::string& path, Handler handler, bool needs_key);
  void post(const std::string& path, Handler handler, bool needs_key);

  // Binds the address; returns the port. Throws Error naming the address when it is taken.
  int bind();
  // Serves until stop(), then waits for open connections to finish; false if accepting failed.
  bool serve();
  void stop();

 private:
  struct Route {
    std::string method;
    std::regex pattern;
    Handler handler;
    bool needs_key;
  };

  void add(std::string method, const std::string& path, Handler handler, bool needs_key);
  void serve_connection(int fd);
  bool serve_request(SocketStream& stream);
  bool refuse_and_close(SocketStream& stream, const HttpRequest& req, const HttpReadError& e) const;
  // The route for the request, or nullptr with a 404/405 already in res.
  const Route* find_route(HttpRequest& req, httplib::Response& res) const;
  void run_handler(const Route& route, const HttpRequest& req, httplib::Response& res) const;
  bool authorised(const httplib::Request& req) const;

  HttpOptions options_;
  HttpLimits limits_;
  std::vector<Route> routes_;
  HttpListener listener_;
  std::unique_ptr<comm::ElasticTaskQueue> pool_;
  std::atomic<bool> stopping_{false};
};

}  // namespace shardlm::server
