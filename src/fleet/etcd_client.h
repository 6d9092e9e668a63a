// An etcd v3 client over its JSON gateway (HTTP POST /v3/..., keys and values in base64): what the
// fleet needs — put under a lease, read a prefix, leases with keep-alive, and a health probe. Every
// call tries the endpoints in turn and throws EtcdError naming what failed; none retries later.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace shardlm::fleet {

struct EtcdError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "http://a:2379,http://b:2379" or "a:2379" (http:// is assumed) as a list of base URLs.
std::vector<std::string> parse_etcd_endpoints(const std::string& text);

class EtcdClient {
 public:
  explicit EtcdClient(std::vector<std::string> endpoints,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(1500));

  // A lease of ttl_seconds; returns its id.
  int64_t grant_lease(int ttl_seconds);
  // One keep-alive; false when the lease no longer exists (expired or revoked).
  bool keep_alive(int64_t lease);
  void revoke(int64_t lease);
  void put(const std::string& key, const std::string& value, int64_t lease = 0);
  void remove(const std::string& key);
  // Every key starting with `prefix`, with its value, in key order.
  std::vector<std::pair<std::string, std::string>> get_prefix(const std::string& prefix);
  // The server's version string (GET /version); throws when no endpoint answers.
  std::string version();

  const std::vector<std::string>& endpoints() const { return endpoints_; }

 private:
  nlohmann::json call(const std::string& path, const nlohmann::json& body);

  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
};

}  // namespace shardlm::fleet
