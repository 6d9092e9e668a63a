// HTTP/1.1 response framing.
#include "server/http_response_writer.h"

#include <fmt/format.h>
#include <strings.h>

namespace shardlm::server {

namespace {

bool same_name(const std::string& a, const char* b) {
  return strcasecmp(a.c_str(), b) == 0;
}

bool ours(const std::string& name) {
  return same_name(name, "Content-Length") || same_name(name, "Transfer-Encoding") ||
         same_name(name, "Connection");
}

std::string head(const httplib::Response& res, bool keep_alive, bool chunked, size_t length) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", res.status, reason_phrase(res.status));
  for (const auto& [name, value] : res.headers) {
    if (!ours(name)) out += fmt::format("{}: {}\r\n", name, value);
  }
  if (!res.has_header("Content-Type") && (chunked || length > 0)) {
    out += "Content-Type: text/plain\r\n";
  }
  out += chunked ? std::string("Transfer-Encoding: chunked\r\n")
                 : fmt::format("Content-Length: {}\r\n", length);
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return out;
}

// Runs the content provider, each write one chunk, until done() or a failure.
bool write_chunks(SocketStream& s, httplib::Response& res, std::chrono::milliseconds timeout) {
  bool ok = true, done = false;
  const auto deadline = [timeout] { return SocketStream::Clock::now() + timeout; };
  httplib::DataSink sink;
  sink.write = [&](const char* data, size_t n) {
    if (!ok || done) return false;
    if (n == 0) return true;  // a zero-size chunk would end the body
    ok = s.write_all(fmt::format("{:x}\r\n", n), deadline()) &&
         s.write_all(std::string_view(data, n), deadline()) && s.write_all("\r\n", deadline());
    return ok;
  };
  sink.done = [&] {
    if (ok && !done) ok = s.write_all("0\r\n\r\n", deadline());
    done = true;
  };
  sink.is_writable = [&] { return ok && s.peer_connected(); };
  while (ok && !done) {
    if (!res.content_provider_(0, 0, sink)) ok = false;
  }
  return ok && done;
}

}  // namespace

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 400 ? "OK" : "Error";
  }
}

bool write_response(SocketStream& s, const HttpRequest& req, httplib::Response& res,
                    bool keep_alive, std::chrono::milliseconds write_timeout) {
  const bool chunked = static_cast<bool>(res.content_provider_);
  const bool head_only = req.method == "HEAD";
  const auto deadline = SocketStream::Clock::now() + write_timeout;
  if (!s.write_all(head(res, keep_alive, chunked, res.body.size()), deadline)) return false;
  if (head_only) return true;
  if (!chunked) return s.write_all(res.body, deadline);
  res.content_provider_success_ = write_chunks(s, res, write_timeout);
  return res.content_provider_success_;
}

}  // namespace shardlm::server
