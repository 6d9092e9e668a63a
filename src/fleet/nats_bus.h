// The fleet's event bus: publish and subscribe on a NATS server through the official C client
// (libnats). The connection retries forever in the background (a bus started before its server, or
// across a server restart, catches up by itself); publishes while disconnected are buffered by the
// client up to its reconnect buffer, then dropped.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

struct __natsConnection;
struct __natsSubscription;

namespace shardlm::fleet {

class NatsBus {
 public:
  // (subject, payload), called on the client's delivery thread.
  using Handler = std::function<void(std::string_view subject, std::string_view data)>;

  // `url`: "nats://host:4222" or "host:4222". Throws Error when the options are refused (a
  // malformed URL); an unreachable server is not an error (see connected()).
  explicit NatsBus(const std::string& url);
  ~NatsBus();
  NatsBus(const NatsBus&) = delete;
  NatsBus& operator=(const NatsBus&) = delete;

  void publish(const std::string& subject, std::string_view data);
  // Wildcards as NATS has them ("shardlm.kv.*", "shardlm.>"). Lives as long as the bus.
  void subscribe(const std::string& subject, Handler handler);
  bool connected() const;
  const std::string& url() const { return url_; }

 private:
  struct Subscription;
  std::string url_;
  __natsConnection* conn_ = nullptr;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Subscription>> subs_;
};

}  // namespace shardlm::fleet
