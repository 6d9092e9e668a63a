// SocketStream: poll() in short slices against a deadline and the server's stop flag.
#include "server/socket_stream.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace shardlm::server {

namespace {

using std::chrono::milliseconds;

constexpr size_t kReadChunk = 16 * 1024;
constexpr int kSliceMs = 200;  // how often a wait looks at the stop flag
constexpr int kLingerMs = 500;
constexpr size_t kLingerBytes = 1 << 20;

// Milliseconds to wait in one poll: the rest of the deadline, at most one slice; 0 when past.
int slice_until(SocketStream::Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - SocketStream::Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, kSliceMs));
}

}  // namespace

SocketStream::SocketStream(int fd, const std::atomic<bool>& stopping)
    : fd_(fd), stopping_(stopping) {}

// A lingering close: say we are done writing, then take what the client still sends for a
// moment, so that closing with unread input does not reset the connection before the client has
// read our last answer (a 408 or 413, say).
SocketStream::~SocketStream() {
  ::shutdown(fd_, SHUT_WR);
  const auto deadline = Clock::now() + milliseconds(kLingerMs);
  char sink[4096];
  for (size_t taken = 0; taken < kLingerBytes;) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, slice_until(deadline)) <= 0) break;
    const ssize_t n = ::recv(fd_, sink, sizeof(sink), MSG_DONTWAIT);
    if (n <= 0) break;
    taken += static_cast<size_t>(n);
  }
  ::close(fd_);
}

SocketStream::ReadStatus SocketStream::fill(Clock::time_point deadline) {
  if (begin_ > 0 && (begin_ == buffer_.size() || begin_ >= kReadChunk)) {
    buffer_.erase(0, begin_);  // keeps pipelined bytes, drops what was read
    begin_ = 0;
  }
  while (true) {
    if (stopping_) return ReadStatus::kStopped;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, slice_until(deadline));
    if (ready < 0 && errno != EINTR) return ReadStatus::kClosed;
    if (ready > 0) break;
    if (Clock::now() >= deadline) return ReadStatus::kTimeout;
  }
  const size_t old = buffer_.size();
  buffer_.resize(old + kReadChunk);
  const ssize_t n = ::recv(fd_, buffer_.data() + old, kReadChunk, 0);
  buffer_.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
  if (n > 0) return ReadStatus::kOk;
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return ReadStatus::kOk;
  return ReadStatus::kClosed;
}

SocketStream::ReadStatus SocketStream::wait_readable(Clock::time_point deadline) {
  return has_buffered() ? ReadStatus::kOk : fill(deadline);
}

SocketStream::ReadStatus SocketStream::read_line(std::string& line, size_t max_bytes,
                                                 Clock::time_point deadline) {
  size_t scanned = 0;  // bytes after begin_ known to hold no newline
  while (true) {
    const size_t nl = buffer_.find('\n', begin_ + scanned);
    if (nl != std::string::npos) {
      if (nl - begin_ > max_bytes) return ReadStatus::kTooLong;
      line.assign(buffer_, begin_, nl - begin_);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      begin_ = nl + 1;
      return ReadStatus::kOk;
    }
    scanned = buffer_.size() - begin_;
    if (scanned > max_bytes) return ReadStatus::kTooLong;
    if (const ReadStatus s = fill(deadline); s != ReadStatus::kOk) return s;
  }
}

SocketStream::ReadStatus SocketStream::read_exact(std::string& out, size_t n,
                                                  Clock::time_point deadline) {
  while (true) {
    const size_t take = std::min(n, buffer_.size() - begin_);
    out.append(buffer_, begin_, take);
    begin_ += take;
    n -= take;
    if (n == 0) return ReadStatus::kOk;
    if (const ReadStatus s = fill(deadline); s != ReadStatus::kOk) return s;
  }
}

bool SocketStream::write_all(std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
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

bool SocketStream::peer_connected() const {
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return true;
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return false;
  char byte;
  const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

}  // namespace shardlm::server
