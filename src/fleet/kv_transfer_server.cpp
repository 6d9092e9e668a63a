// KvTransferServer: accept loop, one thread per connection, frames through KvSocket.
#include "fleet/kv_transfer_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "fleet/kv_transfer_protocol.h"
#include "fleet/kv_transfer_socket.h"

namespace shardlm::fleet {

namespace {

int listen_on(const std::string& host, int port, int& bound_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string h = host.empty() ? "0.0.0.0" : host;
  if (::getaddrinfo(h.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
    fail("the KV transfer port: cannot resolve '{}'", h);
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool ok =
      fd >= 0 && ::bind(fd, res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd, 128) == 0;
  ::freeaddrinfo(res);
  if (!ok) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    fail("cannot listen on {}:{} for KV transfers ({}); pick another --kv-transfer-port", h, port,
         why);
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  bound_port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return fd;
}

std::string peer_name(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, host, sizeof(host));
  } else if (a.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a)->sin6_addr, host,
                sizeof(host));
  }
  return host;
}

bool reply(KvSocket& s, KvFrameKind kind, uint64_t id, const std::string& payload,
           std::chrono::milliseconds timeout) {
  const std::string frame = encode_header({kKvTransferVersion, kind, id, payload.size()}) + payload;
  return s.write_all(frame, KvSocket::Clock::now() + timeout);
}

}  // namespace

void KvTransferServer::drop_probe(KvSocket& s, const KvFrameHeader& h, const std::string& peer,
                                  KvSocket::Clock::time_point deadline) {
  if (h.payload_bytes > kKvMaxProbeBytes) {
    spdlog::warn("kv transfer: refused {}: a probe of {} bytes (at most {})", peer,
                 h.payload_bytes, kKvMaxProbeBytes);
    ++stats_.refused;
    reply(s, KvFrameKind::kError, h.request_id, "probe too large", timeout_);
    return;
  }
  std::string chunk(std::min<uint64_t>(h.payload_bytes, 1 << 20), '\0');
  for (uint64_t left = h.payload_bytes; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
    if (s.read_exact(chunk.data(), n, deadline) != KvSocket::Status::kOk) {
      spdlog::warn("kv transfer: {} stopped its probe before its {} bytes arrived", peer,
                   h.payload_bytes);
      return;
    }
    left -= n;
  }
  reply(s, KvFrameKind::kAck, h.request_id, nlohmann::json{{"bytes", h.payload_bytes}}.dump(),
        timeout_);
}

KvTransferServer::KvTransferServer(const std::string& host, int port, Store store,
                                   std::chrono::milliseconds timeout)
    : store_(std::move(store)), timeout_(timeout) {
  listen_fd_ = listen_on(host, port, port_);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

KvTransferServer::~KvTransferServer() {
  stopping_ = true;
  if (accept_thread_.joinable()) accept_thread_.join();
  ::close(listen_fd_);
  std::lock_guard lock(mutex_);
  for (Connection& c : connections_) c.thread.join();
}

void KvTransferServer::reap() {
  std::lock_guard lock(mutex_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    it->thread.join();
    it = connections_.erase(it);
  }
}

void KvTransferServer::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    const int fd = ::accept(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    if (fd < 0) continue;
    reap();
    std::lock_guard lock(mutex_);
    Connection& c = connections_.emplace_back();
    c.thread = std::thread([this, fd, &c, peer = peer_name(addr)] {
      serve(fd, peer);
      c.done = true;
    });
  }
}

void KvTransferServer::serve(int fd, std::string peer) {
  KvSocket s(fd, stopping_);
  const auto deadline = KvSocket::Clock::now() + timeout_;
  std::string head(kKvFrameHeaderBytes, '\0'), why;
  if (s.read_exact(head.data(), head.size(), deadline) != KvSocket::Status::kOk) {
    spdlog::warn("kv transfer: {} sent no whole frame header before it closed or timed out", peer);
    ++stats_.refused;
    return;
  }
  const auto h = decode_header(head, why);
  if (h && h->kind == KvFrameKind::kProbe) return drop_probe(s, *h, peer, deadline);
  if (!h || h->kind != KvFrameKind::kBlocks) {
    if (why.empty()) why = "a frame that is not a block transfer";
    spdlog::warn("kv transfer: refused {}: {}", peer, why);
    ++stats_.refused;
    reply(s, KvFrameKind::kError, h ? h->request_id : 0, why, timeout_);
    return;
  }
  std::string payload(h->payload_bytes, '\0');
  if (s.read_exact(payload.data(), payload.size(), deadline) != KvSocket::Status::kOk) {
    spdlog::warn("kv transfer: {} (request {}) stopped before its {} bytes arrived", peer,
                 h->request_id, h->payload_bytes);
    ++stats_.refused;
    return;
  }
  try {
    KvBlockSet set = decode_blocks(std::move(payload));
    const auto n = static_cast<int64_t>(set.n_blocks() - std::min(set.first, set.n_blocks()));
    const auto bytes = static_cast<int64_t>(set.bytes.size());
    const int64_t stored = store_(h->request_id, std::move(set));
    stats_.transfers += 1;
    stats_.blocks += n;
    stats_.bytes += bytes;
    reply(s, KvFrameKind::kAck, h->request_id, nlohmann::json{{"blocks", stored}}.dump(), timeout_);
  } catch (const std::exception& e) {
    spdlog::warn("kv transfer: refused request {} from {}: {}", h->request_id, peer, e.what());
    ++stats_.refused;
    reply(s, KvFrameKind::kError, h->request_id, e.what(), timeout_);
  }
}

}  // namespace shardlm::fleet
