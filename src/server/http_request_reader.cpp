// HTTP/1.1 request parsing (RFC 9112): lenient about bare LF, strict about what could smuggle a
// second request (obsolete line folding, Content-Length together with chunked, conflicting
// lengths).
#include "server/http_request_reader.h"

#include <fmt/format.h>
#include <strings.h>

#include <algorithm>
#include <cctype>

namespace shardlm::server {

namespace {

using ReadStatus = SocketStream::ReadStatus;

constexpr size_t kMaxHeaders = 100;
constexpr size_t kMaxChunkLine = 1024;

HttpReadError error(int status, std::string message) {
  return HttpReadError{status, std::move(message)};
}

// What to answer when the stream stopped early.
HttpReadError stream_error(ReadStatus s, const char* part, int too_long_status) {
  switch (s) {
    case ReadStatus::kTimeout:
      return error(408, fmt::format("the request {} was not received in time", part));
    case ReadStatus::kTooLong:
      return error(too_long_status, fmt::format("the request {} is too large", part));
    default:
      return error(0, "");  // closed by the client, or the server is stopping
  }
}

std::string trim(std::string_view s) {
  const auto not_space = [](char c) { return c != ' ' && c != '\t'; };
  const auto b = std::find_if(s.begin(), s.end(), not_space);
  const auto e = std::find_if(s.rbegin(), s.rend(), not_space).base();
  return b < e ? std::string(b, e) : std::string();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// The path with %XX decoded; nullopt for a malformed escape or a NUL byte.
std::optional<std::string> decode_path(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::optional<HttpReadError> parse_request_line(const std::string& line, HttpRequest& req) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) {
    return error(400, "malformed request line; expected 'METHOD /path HTTP/1.1'");
  }
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.version = line.substr(sp2 + 1);
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0") {
    return error(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  }
  std::string_view target = req.target;
  if (const size_t scheme = target.find("://"); scheme != std::string_view::npos) {
    const size_t slash = target.find('/', scheme + 3);  // absolute-form: keep the path
    target = slash == std::string_view::npos ? "/" : target.substr(slash);
  }
  target = target.substr(0, target.find_first_of("?#"));
  const auto path = decode_path(target);
  if (!path || path->empty() || path->front() != '/') {
    return error(400, "malformed request target; expected a path such as /v1/completions");
  }
  req.path = *path;
  return std::nullopt;
}

std::optional<HttpReadError> parse_header(const std::string& line, HttpRequest& req) {
  if (line[0] == ' ' || line[0] == '\t') return error(400, "folded header lines are not allowed");
  const size_t colon = line.find(':');
  if (colon == 0 || colon == std::string::npos || line.find_first_of(" \t") < colon) {
    return error(400, "malformed header line; expected 'Name: value'");
  }
  if (req.headers.size() >= kMaxHeaders) return error(431, "too many request headers");
  req.headers.emplace(line.substr(0, colon), trim(std::string_view(line).substr(colon + 1)));
  return std::nullopt;
}

// The announced length: nullopt without Content-Length; -1 when malformed or conflicting.
std::optional<int64_t> content_length(const HttpRequest& req) {
  const size_t n = req.get_header_value_count("Content-Length");
  if (n == 0) return std::nullopt;
  std::string first;
  for (size_t i = 0; i < n; ++i) {
    const std::string v = req.get_header_value("Content-Length", i);
    if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), ::isdigit)) return -1;
    if (i > 0 && v != first) return -1;
    first = v;
  }
  return std::stoll(first);
}

std::optional<HttpReadError> read_chunked(SocketStream& s, const HttpLimits& limits,
                                          HttpRequest& req, SocketStream::Clock::time_point dl) {
  std::string line;
  while (true) {
    if (const ReadStatus st = s.read_line(line, kMaxChunkLine, dl); st != ReadStatus::kOk) {
      return stream_error(st, "body", 400);
    }
    const std::string size_text = trim(line.substr(0, line.find(';')));
    if (size_text.empty() || size_text.size() > 15 ||
        !std::all_of(size_text.begin(), size_text.end(), ::isxdigit)) {
      return error(400, "malformed chunk size in a chunked request body");
    }
    const size_t size = std::stoull(size_text, nullptr, 16);
    if (size == 0) break;
    if (req.body.size() + size > limits.max_body_bytes) {
      return error(413, fmt::format("the request body is larger than the limit of {} bytes "
                                    "(--max-request-bytes)",
                                    limits.max_body_bytes));
    }
    if (const ReadStatus st = s.read_exact(req.body, size, dl); st != ReadStatus::kOk) {
      return stream_error(st, "body", 400);
    }
    if (s.read_line(line, kMaxChunkLine, dl) != ReadStatus::kOk || !line.empty()) {
      return error(400, "malformed chunked request body: a chunk does not end with CRLF");
    }
  }
  do {  // trailer fields, up to the blank line
    if (const ReadStatus st = s.read_line(line, kMaxChunkLine, dl); st != ReadStatus::kOk) {
      return stream_error(st, "body", 400);
    }
  } while (!line.empty());
  return std::nullopt;
}

bool send_continue(SocketStream& s, const HttpLimits& limits) {
  return s.write_all("HTTP/1.1 100 Continue\r\n\r\n",
                     SocketStream::Clock::now() + limits.write_timeout);
}

}  // namespace

std::optional<HttpReadError> read_request_head(SocketStream& s, const HttpLimits& limits,
                                               HttpRequest& req) {
  const auto deadline = SocketStream::Clock::now() + limits.head_timeout;
  size_t budget = limits.max_head_bytes;
  std::string line;
  bool have_request_line = false;
  while (true) {
    const ReadStatus st = s.read_line(line, budget, deadline);
    if (st != ReadStatus::kOk) return stream_error(st, "headers", have_request_line ? 431 : 414);
    budget -= std::min(budget, line.size() + 2);
    if (!have_request_line) {
      if (line.empty()) continue;  // RFC 9112 2.2: empty lines before the request line
      if (auto e = parse_request_line(line, req)) return e;
      have_request_line = true;
    } else if (line.empty()) {
      return std::nullopt;
    } else if (auto e = parse_header(line, req)) {
      return e;
    }
  }
}

std::optional<HttpReadError> read_request_body(SocketStream& s, const HttpLimits& limits,
                                               HttpRequest& req) {
  const bool has_te = req.has_header("Transfer-Encoding");
  const auto length = content_length(req);
  if (has_te && strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") != 0) {
    return error(501, "only 'Transfer-Encoding: chunked' is supported for request bodies");
  }
  if ((has_te && length) || (length && *length < 0)) {
    return error(400, "conflicting or malformed Content-Length / Transfer-Encoding headers");
  }
  if (!has_te && length.value_or(0) == 0) return std::nullopt;
  if (length && static_cast<uint64_t>(*length) > limits.max_body_bytes) {
    return error(413, fmt::format("the request body is {} bytes, over the limit of {} "
                                  "(--max-request-bytes)",
                                  *length, limits.max_body_bytes));
  }
  if (req.has_header("Expect")) {
    if (strcasecmp(req.get_header_value("Expect").c_str(), "100-continue") != 0) {
      return error(417, "only 'Expect: 100-continue' is supported");
    }
    if (!send_continue(s, limits)) return error(0, "");
  }
  const auto deadline = SocketStream::Clock::now() + limits.body_timeout;
  if (has_te) return read_chunked(s, limits, req, deadline);
  req.body.reserve(static_cast<size_t>(*length));
  const ReadStatus st = s.read_exact(req.body, static_cast<size_t>(*length), deadline);
  return st == ReadStatus::kOk ? std::nullopt : std::optional(stream_error(st, "body", 400));
}

}  // namespace shardlm::server
