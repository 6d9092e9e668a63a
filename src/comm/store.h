// The rendezvous store: a small key-value service the master runs at --dist-init-addr, over HTTP
// on loopback or the cluster network. Ranks publish their hello (handshake) and Gloo publishes its
// connection addresses through it. Every call has a deadline; a request without the cluster token
// is refused (403), so a stray process cannot join.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace shardlm::comm {

class StoreServer {
 public:
  // Binds host:port now (throws Error naming the address when it is taken) and serves on a thread.
  StoreServer(const std::string& host, int port, std::string token);
  ~StoreServer();
  int port() const { return port_; }
  // The value of `key` if it is set (no waiting): the master reads what ranks publish.
  bool peek(const std::string& key, std::string& value);
  // How long ago `key` was last set (by anyone), or -1 ms when it never was.
  std::chrono::milliseconds age(const std::string& key);
  void set(const std::string& key, std::string value);
  void erase(const std::string& key);

 private:
  bool get(const std::string& key, std::chrono::milliseconds timeout, std::string& value);
  // Sets `key` when it is unset, or when `alive_key` has not been set for `stale` (its holder
  // is gone). Otherwise leaves it and returns false with the current value in `holder`.
  bool claim(const std::string& key, std::string value, const std::string& alive_key,
             std::chrono::milliseconds stale, std::string& holder);

  std::string token_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::string> kv_;
  std::map<std::string, std::chrono::steady_clock::time_point> set_at_;
};

class StoreClient {
 public:
  // timeout: how long calls wait for the server to come up and for keys to appear.
  StoreClient(std::string host, int port, std::string token, std::chrono::milliseconds timeout);

  void set(const std::string& key, const std::string& value);
  // Waits up to `timeout` (default: the client's) for the key; throws Error naming it otherwise.
  std::string get(const std::string& key);
  std::string get(const std::string& key, std::chrono::milliseconds timeout);
  // nullopt-like: false when the key did not appear within the timeout.
  bool try_get(const std::string& key, std::chrono::milliseconds timeout, std::string& value);
  // StoreServer::claim over the wire: true when this caller now holds `key`; false with the
  // holder's value and how long ago its `alive_key` was set otherwise.
  bool claim(const std::string& key, const std::string& value, const std::string& alive_key,
             std::chrono::milliseconds stale, std::string& holder,
             std::chrono::milliseconds& holder_age);

  std::chrono::milliseconds timeout() const { return timeout_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  const std::string& token() const { return token_; }
  std::string address() const;

 private:
  std::string host_;
  int port_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

}  // namespace shardlm::comm
