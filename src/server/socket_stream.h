// One accepted TCP connection of the HTTP server: buffered reads with deadlines (so that a client
// sending a byte every few seconds cannot hold a thread forever), writes that give up on a client
// that stopped reading, and a cheap check of whether the peer has gone away. Owns the socket.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

namespace shardlm::server {

class SocketStream {
 public:
  using Clock = std::chrono::steady_clock;
  enum class ReadStatus { kOk, kClosed, kTimeout, kTooLong, kStopped };

  // `stopping` is polled while waiting, so that a server shutdown ends idle waits promptly.
  SocketStream(int fd, const std::atomic<bool>& stopping);
  ~SocketStream();
  SocketStream(const SocketStream&) = delete;
  SocketStream& operator=(const SocketStream&) = delete;

  // Waits until a byte is buffered or readable; kClosed when the peer closed first.
  ReadStatus wait_readable(Clock::time_point deadline);
  // One line without its "\n" (and "\r"), at most max_bytes long.
  ReadStatus read_line(std::string& line, size_t max_bytes, Clock::time_point deadline);
  // Exactly n bytes appended to out.
  ReadStatus read_exact(std::string& out, size_t n, Clock::time_point deadline);

  // False when the peer is gone or has not taken the bytes by the deadline.
  bool write_all(std::string_view data, Clock::time_point deadline);
  // False once the peer has closed or reset its side; pipelined bytes count as alive.
  bool peer_connected() const;
  bool has_buffered() const { return begin_ < buffer_.size(); }

 private:
  ReadStatus fill(Clock::time_point deadline);

  int fd_;
  const std::atomic<bool>& stopping_;
  std::string buffer_;
  size_t begin_ = 0;
};

}  // namespace shardlm::server
