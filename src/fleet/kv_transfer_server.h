// The decode worker's end of the KV transfer: a TCP listener (--kv-transfer-port, registered in
// etcd with the worker) that takes one kBlocks frame per connection, hands the decoded blocks to
// `store` (which puts them into the engine's prefix cache) and answers kAck with the blocks stored,
// or kError with what went wrong. Reads and writes have deadlines, so a peer that stalls or dies
// costs one connection thread for at most `timeout`; bytes that are not a frame of this version
// are refused with a log line and the listener keeps serving.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "engine/kv_block_transfer.h"
#include "fleet/kv_transfer_protocol.h"
#include "fleet/kv_transfer_socket.h"

namespace shardlm::fleet {

struct KvTransferStats {
  std::atomic<int64_t> transfers{0};  // frames stored
  std::atomic<int64_t> blocks{0};     // blocks received (with their bytes)
  std::atomic<int64_t> bytes{0};      // K/V bytes received
  std::atomic<int64_t> refused{0};    // connections refused (bad frames, failed stores)
};

class KvTransferServer {
 public:
  // store: the blocks of request `request_id`; returns the blocks now cached; throws on failure.
  using Store = std::function<int64_t(uint64_t request_id, KvBlockSet blocks)>;

  // Listens on host:port (0: a free port). Throws Error when it cannot.
  KvTransferServer(const std::string& host, int port, Store store,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~KvTransferServer();  // stops accepting and joins the connection threads

  int port() const { return port_; }
  const KvTransferStats& stats() const { return stats_; }

 private:
  void accept_loop();
  void serve(int fd, std::string peer);
  // A kProbe frame (doctor's bandwidth probe): its payload read and dropped, then a kAck.
  void drop_probe(KvSocket& s, const KvFrameHeader& h, const std::string& peer,
                  KvSocket::Clock::time_point deadline);
  void reap();  // joins connection threads that have finished

  Store store_;
  std::chrono::milliseconds timeout_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  KvTransferStats stats_;
  std::mutex mutex_;
  struct Connection {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Connection> connections_;
  std::thread accept_thread_;
};

}  // namespace shardlm::fleet
