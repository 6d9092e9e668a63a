// etcd's v3 JSON gateway through cpp-httplib.
#include "fleet/etcd_client.h"

#include <fmt/format.h>
#include <httplib.h>

#include "fleet/base64.h"

namespace shardlm::fleet {

namespace {

// The key just past every key with this prefix (etcd's range_end for a prefix query).
std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// etcd writes int64 fields as JSON strings.
int64_t as_int64(const nlohmann::json& v) {
  if (v.is_string()) return std::stoll(v.get<std::string>());
  return v.is_number() ? v.get<int64_t>() : 0;
}

std::string decoded(const nlohmann::json& v) {
  auto text = base64_decode(v.is_string() ? v.get<std::string>() : std::string());
  if (!text) throw EtcdError("etcd returned a key or value that is not base64");
  return *text;
}

}  // namespace

std::vector<std::string> parse_etcd_endpoints(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string e = text.substr(start, end - start);
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (!e.empty()) out.push_back(e.find("://") == std::string::npos ? "http://" + e : e);
    start = end + 1;
  }
  if (out.empty()) throw EtcdError(fmt::format("no etcd endpoint in '{}'", text));
  return out;
}

EtcdClient::EtcdClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {}

nlohmann::json EtcdClient::call(const std::string& path, const nlohmann::json& body) {
  std::string errors;
  for (const std::string& endpoint : endpoints_) {
    httplib::Client cli(endpoint);
    cli.set_connection_timeout(timeout_);
    cli.set_read_timeout(timeout_);
    cli.set_write_timeout(timeout_);
    auto res = cli.Post(path.c_str(), body.dump(), "application/json");
    if (!res) {
      errors += fmt::format(" {}: {};", endpoint, httplib::to_string(res.error()));
      continue;
    }
    auto json = nlohmann::json::parse(res->body, nullptr, false);
    if (res->status != 200 || json.is_discarded()) {
      throw EtcdError(fmt::format("etcd {} {} answered {}: {}", endpoint, path, res->status,
                                  res->body.substr(0, 200)));
    }
    return json;
  }
  throw EtcdError(fmt::format("etcd is unreachable ({}):{}", path, errors));
}

int64_t EtcdClient::grant_lease(int ttl_seconds) {
  const auto r = call("/v3/lease/grant", {{"TTL", ttl_seconds}});
  const int64_t id = as_int64(r.value("ID", nlohmann::json()));
  if (id == 0) throw EtcdError("etcd granted no lease: " + r.dump());
  return id;
}

bool EtcdClient::keep_alive(int64_t lease) {
  const auto r = call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}});
  const auto& result = r.contains("result") ? r["result"] : r;
  return as_int64(result.value("TTL", nlohmann::json())) > 0;
}

void EtcdClient::revoke(int64_t lease) {
  call("/v3/lease/revoke", {{"ID", std::to_string(lease)}});
}

void EtcdClient::put(const std::string& key, const std::string& value, int64_t lease) {
  nlohmann::json body{{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  call("/v3/kv/put", body);
}

void EtcdClient::remove(const std::string& key) {
  call("/v3/kv/deleterange", {{"key", base64_encode(key)}});
}

std::vector<std::pair<std::string, std::string>> EtcdClient::get_prefix(const std::string& prefix) {
  const auto r = call("/v3/kv/range", {{"key", base64_encode(prefix)},
                                       {"range_end", base64_encode(prefix_end(prefix))}});
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : r.value("kvs", nlohmann::json::array())) {
    out.emplace_back(decoded(kv.value("key", nlohmann::json())),
                     decoded(kv.value("value", nlohmann::json(""))));
  }
  return out;
}

std::string EtcdClient::version() {
  std::string errors;
  for (const std::string& endpoint : endpoints_) {
    httplib::Client cli(endpoint);
    cli.set_connection_timeout(timeout_);
    cli.set_read_timeout(timeout_);
    auto res = cli.Get("/version");
    if (res && res->status == 200) {
      auto json = nlohmann::json::parse(res->body, nullptr, false);
      if (!json.is_discarded()) return json.value("etcdserver", res->body);
      return res->body;
    }
    errors += fmt::format(" {}: {};", endpoint,
                          res ? fmt::format("HTTP {}", res->status) : httplib::to_string(res.error()));
  }
  throw EtcdError("etcd is unreachable:" + errors);
}

}  // namespace shardlm::fleet
