// The web chat page's files (web/), compiled into the binary by cmake/web_assets.cmake.
#pragma once

#include <span>
#include <string_view>

namespace shardlm::server {

struct WebAsset {
  std::string_view path;          // the URL path it is served at, e.g. "/chat.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view body;          // the file's bytes
};

// Every file of the page; the generated source defines it.
std::span<const WebAsset> web_assets();

}  // namespace shardlm::server
