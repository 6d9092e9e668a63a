// Reading one HTTP/1.1 request from a connection: the request line and headers within a deadline
// and a size limit, then the body (Content-Length or chunked) within its own deadline and the
// body limit, answering Expect: 100-continue. Failures carry the status to answer with.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "server/http_request.h"
#include "server/socket_stream.h"

namespace shardlm::server {

struct HttpLimits {
  size_t max_head_bytes = 64 * 1024;  // request line and headers together
  size_t max_body_bytes = size_t{32} << 20;
  std::chrono::milliseconds head_timeout{30'000};  // from the first byte to the blank line
  std::chrono::milliseconds body_timeout{120'000};
  std::chrono::milliseconds write_timeout{60'000};  // a client that reads nothing this long is gone
};

// Why a request could not be read: the status to answer with (0: the connection just ended or
// the server is stopping, answer nothing) and a message for the client.
struct HttpReadError {
  int status = 0;
  std::string message;
};

// The request line and headers. The caller has seen a first byte (wait_readable).
std::optional<HttpReadError> read_request_head(SocketStream& s, const HttpLimits& limits,
                                               HttpRequest& req);

// The body the headers announce, into req.body (none when neither Content-Length nor chunked).
std::optional<HttpReadError> read_request_body(SocketStream& s, const HttpLimits& limits,
                                               HttpRequest& req);

}  // namespace shardlm::server
