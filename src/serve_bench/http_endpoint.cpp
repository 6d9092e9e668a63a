// Base URL parsing, client set-up and JSON request helpers.
#include "serve_bench/http_endpoint.h"

#include <algorithm>
#include <chrono>
#include <regex>

#include "core/error.h"

namespace shardlm::serve_bench {

namespace {

std::chrono::microseconds as_duration(double seconds) {
  return std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

nlohmann::json parse_response(const Endpoint& e, const std::string& path,
                              const httplib::Result& r) {
  if (!r) fail("request to {} failed: {}", e.url(path), describe(r.error()));
  if (r->status < 200 || r->status >= 300) {
    fail("{} answered HTTP {}: {}", e.url(path), r->status, error_message(r->body));
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) fail("{} answered with a body that is not JSON", e.url(path));
  return j;
}

}  // namespace

Endpoint Endpoint::parse(const std::string& base_url, const std::string& api_key, double timeout) {
  static const std::regex kUrl(R"(^(https?://[^/?#]+)(/[^?#]*)?$)");
  std::smatch m;
  if (!std::regex_match(base_url, m, kUrl)) {
    fail(
        "--base-url '{}' is not a URL like http://127.0.0.1:8000 (scheme, host, optional port "
        "and path prefix)",
        base_url);
  }
  if (!(timeout > 0)) fail("--timeout must be a positive number of seconds, got {}", timeout);
  Endpoint e;
  e.origin = m[1].str();
  e.prefix = m[2].str();
  while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
  e.api_key = api_key;
  e.timeout = timeout;
  return e;
}

std::unique_ptr<httplib::Client> make_client(const Endpoint& e) {
  auto client = std::make_unique<httplib::Client>(e.origin);
  if (!client->is_valid()) fail("cannot make an HTTP client for '{}'", e.origin);
  client->set_connection_timeout(as_duration(std::min(e.timeout, 30.0)));
  client->set_read_timeout(as_duration(e.timeout));
  client->set_write_timeout(as_duration(e.timeout));
  if (!e.api_key.empty()) client->set_bearer_token_auth(e.api_key);
  return client;
}

std::string describe(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "could not connect (connection refused or host unreachable)";
    case httplib::Error::ConnectionTimeout:
      return "connection timed out";
    case httplib::Error::Read:
      return "connection closed or read timed out before the response was complete";
    case httplib::Error::Write:
      return "connection closed while sending the request";
    case httplib::Error::Canceled:
      return "request cancelled";
    default:
      return httplib::to_string(error);
  }
}

std::string error_message(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error")) {
    const auto& err = j["error"];
    if (err.is_object() && err.contains("message") && err["message"].is_string()) {
      return err["message"].get<std::string>();
    }
    if (err.is_string()) return err.get<std::string>();
  }
  constexpr size_t kMax = 300;
  return body.size() > kMax ? body.substr(0, kMax) + "..." : body;
}

nlohmann::json get_json(const Endpoint& e, const std::string& path) {
  auto client = make_client(e);
  return parse_response(e, path, client->Get(e.prefix + path));
}

nlohmann::json post_json(const Endpoint& e, const std::string& path, const nlohmann::json& body) {
  auto client = make_client(e);
  return parse_response(e, path, client->Post(e.prefix + path, body.dump(), "application/json"));
}

}  // namespace shardlm::serve_bench
