// The HTTP transport: cpp-httplib with an elastic worker pool, a body size limit (413), API-key
// checks (401) on the routes that need them, and every error (ours, the library's 404/413/400,
// an unexpected exception) answered with an OpenAI-style JSON error body.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <string>

namespace shardlm::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;      // 0 = any free port
  std::string api_key;  // empty = no key required
  size_t max_body_bytes = size_t{32} << 20;
  size_t max_threads = 4096;  // concurrent connections (each open stream holds one)
};

class HttpServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  explicit HttpServer(HttpOptions options);
  ~HttpServer();

  void get(const std::string& path, Handler handler, bool needs_key);
  void post(const std::string& path, Handler handler, bool needs_key);

  // Binds the address; returns the port. Throws Error naming the address when it is taken.
  int bind();
  // Serves until stop(); returns false if the listener failed.
  bool serve();
  void stop();
  bool running() const { return server_.is_running(); }

 private:
  Handler guarded(Handler handler, bool needs_key) const;
  bool authorised(const httplib::Request& req) const;

  HttpOptions options_;
  httplib::Server server_;
};

}  // namespace shardlm::server
