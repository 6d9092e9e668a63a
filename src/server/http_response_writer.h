// Writing an httplib::Response to a connection: the status line, its headers with the framing
// headers we own (Content-Length or chunked, Connection), then the body or the chunks of its
// content provider (an SSE stream) until the provider calls done() or the client goes away.
#pragma once

#include <httplib.h>

#include <chrono>

#include "server/http_request.h"
#include "server/socket_stream.h"

namespace shardlm::server {

// The standard reason phrase of a status code.
const char* reason_phrase(int status);

// True when the whole response went out. Sets res.content_provider_success_ for the provider's
// releaser (false: the client left or the provider stopped early).
bool write_response(SocketStream& s, const HttpRequest& req, httplib::Response& res,
                    bool keep_alive, std::chrono::milliseconds write_timeout);

}  // namespace shardlm::server
