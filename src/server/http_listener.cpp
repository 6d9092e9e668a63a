// HttpListener: getaddrinfo, SO_REUSEADDR, listen(SOMAXCONN), poll-sliced accept4.
#include "server/http_listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "core/error.h"

namespace shardlm::server {

namespace {

constexpr int kAcceptSliceMs = 100;  // how often the accept loop looks at the stop flag

int listen_on(const addrinfo& ai) {
  const int fd = ::socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, ai.ai_addr, ai.ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) return fd;
  ::close(fd);
  return -1;
}

int bound_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

}  // namespace

HttpListener::~HttpListener() {
  if (fd_ >= 0) ::close(fd_);
}

int HttpListener::bind(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list) != 0) {
    fail("cannot listen on {}:{}: the host name does not resolve; pick another --host", host, port);
  }
  for (addrinfo* ai = list; ai && fd_ < 0; ai = ai->ai_next) fd_ = listen_on(*ai);
  ::freeaddrinfo(list);
  if (fd_ < 0) {
    fail(
        "cannot listen on {}:{}: the address is in use or not local; pick another --port or "
        "--host",
        host, port);
  }
  return bound_port(fd_);
}

bool HttpListener::accept_loop(const std::atomic<bool>& stopping,
                               const std::function<void(int)>& on_accept) {
  while (!stopping) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, kAcceptSliceMs) <= 0) continue;
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      on_accept(fd);
    } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // wait for a socket to close
    } else if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
      return false;
    }
  }
  return true;
}

}  // namespace shardlm::server
