// ProbeListener, probe_tcp and the interface and /dev/shm lookups.
#include "comm/net_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "comm/local_addresses.h"
#include "core/error.h"

namespace shardlm::comm {

namespace {

addrinfo* resolve(const std::string& host, int port, int flags) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return nullptr;
  return res;
}

std::string address_text(const sockaddr* a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  const void* p =
      a->sa_family == AF_INET
          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a)->sin_addr)
          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(a)->sin6_addr);
  return inet_ntop(a->sa_family, p, buf, sizeof(buf)) ? canonical_address(buf) : "";
}

}  // namespace

ProbeListener::ProbeListener(const std::string& address) {
  addrinfo* res = resolve(address, 0, AI_PASSIVE);
  if (!res) fail("cannot resolve this rank's address '{}'", address);
  fd_ = socket(res->ai_family, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool ok = fd_ >= 0 && bind(fd_, res->ai_addr, res->ai_addrlen) == 0 && listen(fd_, 64) == 0;
  freeaddrinfo(res);
  if (!ok) {
    const int err = errno;
    if (fd_ >= 0) close(fd_);  // the destructor does not run for a constructor that throws
    fail("cannot listen on {} for the reachability probe: {}", address, std::strerror(err));
  }
  sockaddr_storage name{};
  socklen_t len = sizeof(name);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&name), &len);
  port_ = ntohs(name.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&name)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&name)->sin6_port);
  thread_ = std::thread([this] {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const int c = accept(fd_, nullptr, nullptr);
      if (c >= 0) close(c);
    }
  });
}

ProbeListener::~ProbeListener() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
}

std::string probe_tcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
  addrinfo* res = resolve(host, port, 0);
  if (!res) return "cannot resolve " + host;
  const int fd = socket(res->ai_family, SOCK_STREAM, 0);
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    freeaddrinfo(res);
    return why;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  std::string result = "ok";
  if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      result = std::strerror(errno);
    } else {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof(err);
      if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
        result = "no answer within " + std::to_string(timeout.count()) + " ms";
      } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
        result = std::strerror(err);
      }
    }
  }
  close(fd);
  freeaddrinfo(res);
  return result;
}

namespace {

// The first (interface name, address) of the configured interfaces (IPv4 only when ipv4_only)
// for which `match` is true, as {name, address}; {"", ""} when none is.
template <typename Match>
std::pair<std::string, std::string> find_interface(bool ipv4_only, Match match) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  std::pair<std::string, std::string> found;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    const int family = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC;
    if (family != AF_INET && (ipv4_only || family != AF_INET6)) continue;
    const std::string a = address_text(i->ifa_addr);
    if (match(std::string(i->ifa_name), a)) {
      found = {i->ifa_name, a};
      break;
    }
  }
  freeifaddrs(list);
  return found;
}

}  // namespace

std::string interface_of(const std::string& address) {
  const std::string want = canonical_address(address);
  return find_interface(false, [&](const std::string&, const std::string& a) { return a == want; })
      .first;
}

std::string address_of_interface(const std::string& wanted) {
  return find_interface(true,
                        [&](const std::string& name, const std::string&) { return name == wanted; })
      .second;
}

uint64_t shm_bytes() {
  struct statvfs s {};
  if (statvfs("/dev/shm", &s) != 0) return 0;
  return static_cast<uint64_t>(s.f_blocks) * s.f_frsize;
}

}  // namespace shardlm::comm

namespace shardlm::comm {

int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  const bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  if (fd >= 0) close(fd);
  if (!ok)
    fail("cannot find a free port on 127.0.0.1 for the node's rendezvous: {}",
         std::strerror(errno));
  return ntohs(a.sin_port);
}

}  // namespace shardlm::comm
