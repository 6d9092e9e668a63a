// Where the server under test is and how to talk to it: the base URL split into origin
// (scheme://host:port) and path prefix, the API key, the per-request timeout, and small JSON GET /
// POST helpers that turn transport and HTTP failures into shardlm::Error naming the URL.
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace shardlm::serve_bench {

struct Endpoint {
  std::string origin;  // "http://127.0.0.1:8000"
  std::string prefix;  // path prefix without a trailing slash: "" or e.g. "/api"
  std::string api_key;
  double timeout = 600;  // seconds a request may take, connection included

  // Throws Error for a URL that is not http(s)://host[:port][/prefix].
  static Endpoint parse(const std::string& base_url, const std::string& api_key, double timeout);

  std::string url(const std::string& path) const { return origin + prefix + path; }
};

// A client with the endpoint's timeouts and bearer token. One per thread: httplib clients are not
// safe for concurrent requests.
std::unique_ptr<httplib::Client> make_client(const Endpoint& endpoint);

// "connection refused or host unreachable" and the like, for messages.
std::string describe(httplib::Error error);

// The message of an OpenAI-style error body ({"error": {"message": ...}}), else the body itself
// (shortened).
std::string error_message(const std::string& body);

// GET/POST returning the parsed JSON body; throws Error (URL, status or transport error, server
// message) for anything but a 2xx JSON response.
nlohmann::json get_json(const Endpoint& endpoint, const std::string& path);
nlohmann::json post_json(const Endpoint& endpoint, const std::string& path,
                         const nlohmann::json& body);

}  // namespace shardlm::serve_bench
