// The web chat page's routes.
#include "server/web_routes.h"

#include <string>

#include "server/http_server.h"
#include "server/web_assets.h"

namespace shardlm::server {

namespace {

// The page loads only its own files and talks only to this server.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'";

void serve_asset(const WebAsset& asset, httplib::Response& res) {
  res.set_content(std::string(asset.body), std::string(asset.content_type));
  res.set_header("Content-Security-Policy", kContentSecurityPolicy);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Cache-Control", "no-cache");
}

// The page itself at /, its other files at /<name> (a route is a regex: '.' escaped).
std::string route_pattern(const WebAsset& asset) {
  if (asset.path == "/chat.html") return "/";
  std::string pattern;
  for (const char c : asset.path) pattern += c == '.' ? std::string("\\.") : std::string(1, c);
  return pattern;
}

}  // namespace

void register_web_routes(HttpServer& http) {
  for (const WebAsset& asset : web_assets()) {
    http.get(
        route_pattern(asset),
        [&asset](const HttpRequest&, httplib::Response& res) { serve_asset(asset, res); }, false);
  }
}

}  // namespace shardlm::server
