// KvSocket: poll() in short slices against a deadline and the stop flag, then recv/send as much
// as the kernel takes.
#include "fleet/kv_transfer_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace shardlm::fleet {

namespace {

constexpr int kSliceMs = 200;  // how often a wait looks at the stop flag
constexpr auto kLinger = std::chrono::milliseconds(300);

int slice_until(KvSocket::Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - KvSocket::Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, kSliceMs));
}

}  // namespace

KvSocket::~KvSocket() {
  ::shutdown(fd_, SHUT_WR);
  const auto deadline = Clock::now() + kLinger;
  char sink[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, slice_until(deadline)) <= 0) continue;
    if (::recv(fd_, sink, sizeof(sink), MSG_DONTWAIT) <= 0) break;
  }
  ::close(fd_);
}

KvSocket::Status KvSocket::read_exact(char* dst, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    if (stopping_) return Status::kStopped;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, slice_until(deadline));
    if (ready < 0 && errno != EINTR) return Status::kClosed;
    if (ready <= 0) {
      if (Clock::now() >= deadline) return Status::kTimeout;
      continue;
    }
    const ssize_t got = ::recv(fd_, dst, n, MSG_DONTWAIT);
    if (got == 0) return Status::kClosed;
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return Status::kClosed;
    }
    dst += got;
    n -= static_cast<size_t>(got);
  }
  return Status::kOk;
}

bool KvSocket::write_all(std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    if (stopping_) return false;
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, slice_until(deadline)) < 0 && errno != EINTR) return false;
    if (Clock::now() >= deadline || (p.revents & (POLLERR | POLLHUP))) return false;
  }
  return true;
}

}  // namespace shardlm::fleet
