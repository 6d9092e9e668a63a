// The HTTP server's listening socket: bound to host:port with the kernel's largest accept queue
// (SOMAXCONN, so a burst of hundreds of connections waits instead of being reset), and an accept
// loop that hands each connection to a callback until stopped.
#pragma once

#include <atomic>
#include <functional>
#include <string>

namespace shardlm::server {

class HttpListener {
 public:
  HttpListener() = default;
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds and listens; returns the port (the kernel's choice for port 0). Throws Error naming
  // the address when it cannot.
  int bind(const std::string& host, int port);
  // Accepts until `stopping` is set; each accepted socket goes to on_accept, which owns it.
  // Returns false if accepting failed for another reason.
  bool accept_loop(const std::atomic<bool>& stopping, const std::function<void(int)>& on_accept);

 private:
  int fd_ = -1;
};

}  // namespace shardlm::server
