// One TCP connection of the KV transfer, owned: whole reads and writes of large frames straight
// into and out of the caller's buffers (a block set is megabytes: no 16 KiB staging as the HTTP
// server's SocketStream does), each against a deadline, polling a stop flag. Closing says it is
// done writing and takes what the peer still sends for a moment, so a refusal sent to a peer that
// is still writing is not lost to a reset.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string_view>

namespace shardlm::fleet {

class KvSocket {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Status { kOk, kClosed, kTimeout, kStopped };

  KvSocket(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
  ~KvSocket();
  KvSocket(const KvSocket&) = delete;
  KvSocket& operator=(const KvSocket&) = delete;

  // Exactly n bytes into dst.
  Status read_exact(char* dst, size_t n, Clock::time_point deadline);
  bool write_all(std::string_view data, Clock::time_point deadline);

 private:
  int fd_;
  const std::atomic<bool>& stopping_;
};

}  // namespace shardlm::fleet
