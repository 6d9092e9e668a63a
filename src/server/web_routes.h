// GET routes for the web chat page (/, /chat.js, /chat.css) from the files compiled into the
// binary; `serve` and `frontend` both register them. No API key is needed for the page itself:
// its requests to /v1 send the key typed into it.
#pragma once

namespace shardlm::server {

class HttpServer;

void register_web_routes(HttpServer& http);

}  // namespace shardlm::server
