// A request as the HTTP server hands it to a route: httplib's request fields (method, path,
// headers, body, path matches) plus a way to ask whether the client is still connected, so that a
// handler waiting for a long answer can give up when nobody is left to read it.
#pragma once

#include <httplib.h>

#include <functional>

namespace shardlm::server {

// The status a handler leaves in the response when its client went away before the answer was
// ready (nginx's 499): nothing is written and the connection is closed.
constexpr int kClientClosedRequest = 499;

struct HttpRequest : httplib::Request {
  std::function<bool()> client_connected = [] { return true; };
};

}  // namespace shardlm::server
