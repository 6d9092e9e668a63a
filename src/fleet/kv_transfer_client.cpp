// send_kv_blocks: connect, one kBlocks frame out, one kAck / kError frame back.
#include "fleet/kv_transfer_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/request.h"
#include "fleet/kv_transfer_protocol.h"
#include "fleet/kv_transfer_socket.h"

namespace shardlm::fleet {

namespace {

std::pair<std::string, std::string> split_target(const std::string& target) {
  const size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon + 1 == target.size()) {
    fail("KV transfer target '{}' is not host:port", target);
  }
  std::string host = target.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, target.substr(colon + 1)};
}

// A non-blocking connect that waits at most `timeout`.
int try_connect(const addrinfo* a, std::chrono::milliseconds timeout, std::string& why) {
  const int fd = ::socket(a->ai_family, SOCK_STREAM, 0);
  if (fd < 0) {
    why = std::strerror(errno);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
    why = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof(err);
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
    why = "timed out";
    ::close(fd);
    return -1;
  }
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    why = std::strerror(err);
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

int connect_tcp(const std::string& target, std::chrono::milliseconds timeout) {
  const auto [host, port] = split_target(target);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    fail("KV transfer target '{}': cannot resolve '{}'", target, host);
  }
  std::string why = "no address";
  int fd = -1;
  for (const addrinfo* a = res; a && fd < 0; a = a->ai_next) fd = try_connect(a, timeout, why);
  ::freeaddrinfo(res);
  if (fd < 0) fail("cannot connect to the decode worker's KV transfer port {}: {}", target, why);
  return fd;
}

KvSendResult send_kv_blocks(const std::string& target, uint64_t request_id, const KvBlockSet& set,
                            std::chrono::milliseconds timeout) {
  const double start = monotonic_seconds();
  const std::atomic<bool> never{false};
  KvSocket s(connect_tcp(target, timeout), never);
  const auto deadline = KvSocket::Clock::now() + timeout;
  const std::string meta = metadata_prefix(set);
  const size_t payload_bytes = meta.size() + set.bytes.size();
  const std::string head =
      encode_header({kKvTransferVersion, KvFrameKind::kBlocks, request_id, payload_bytes});
  if (!s.write_all(head, deadline) || !s.write_all(meta, deadline) ||
      !s.write_all(set.bytes, deadline)) {
    fail("the decode worker at {} stopped taking the KV blocks (closed or timed out)", target);
  }
  std::string reply_head(kKvFrameHeaderBytes, '\0'), why;
  if (s.read_exact(reply_head.data(), reply_head.size(), deadline) != KvSocket::Status::kOk) {
    fail("the decode worker at {} did not answer the KV transfer (closed or timed out)", target);
  }
  const auto h = decode_header(reply_head, why);
  if (!h) fail("the decode worker at {} answered with {}", target, why);
  if (h->payload_bytes > (1u << 20))
    fail("the decode worker at {} answered with a huge frame", target);
  std::string reply(h->payload_bytes, '\0');
  if (s.read_exact(reply.data(), reply.size(), deadline) != KvSocket::Status::kOk) {
    fail("the decode worker at {} cut its answer to the KV transfer", target);
  }
  if (h->kind == KvFrameKind::kError)
    fail("the decode worker at {} refused the KV blocks: {}", target, reply);
  const auto j = nlohmann::json::parse(reply, nullptr, false);
  if (h->kind != KvFrameKind::kAck || !j.is_object() || !j.contains("blocks")) {
    fail("the decode worker at {} answered the KV transfer with a malformed frame", target);
  }
  KvSendResult r;
  r.blocks_stored = j["blocks"].get<int64_t>();
  r.bytes = head.size() + payload_bytes;
  r.seconds = monotonic_seconds() - start;
  return r;
}

double probe_kv_link(const std::string& target, uint64_t bytes, std::chrono::milliseconds timeout) {
  const std::string filler(std::min<uint64_t>(bytes, 4 << 20), '\x5a');
  const double start = monotonic_seconds();
  const std::atomic<bool> never{false};
  KvSocket s(connect_tcp(target, timeout), never);
  const auto deadline = KvSocket::Clock::now() + timeout;
  bool ok = s.write_all(encode_header({kKvTransferVersion, KvFrameKind::kProbe, 0, bytes}),
                        deadline);
  for (uint64_t left = bytes; ok && left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, filler.size()));
    ok = s.write_all(std::string_view(filler.data(), n), deadline);
    left -= n;
  }
  std::string head(kKvFrameHeaderBytes, '\0'), why;
  if (!ok || s.read_exact(head.data(), head.size(), deadline) != KvSocket::Status::kOk)
    fail("the KV transfer port {} stopped taking the probe (closed or timed out)", target);
  const auto h = decode_header(head, why);
  if (!h || h->kind != KvFrameKind::kAck)
    fail("the KV transfer port {} refused the probe ({}): an older shardlm?", target,
         why.empty() ? "an error frame" : why);
  std::string reply(std::min<uint64_t>(h->payload_bytes, 1 << 16), '\0');
  s.read_exact(reply.data(), reply.size(), deadline);
  return monotonic_seconds() - start;
}

}  // namespace shardlm::fleet
