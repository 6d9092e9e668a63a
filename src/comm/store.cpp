// StoreServer / StoreClient over cpp-httplib: POST /set and GET /get with the key in a header,
// the cluster token in another (checked before any body is read); /get waits on a condition
// variable up to the client's timeout. Values are limited to 1 MiB.
#include "comm/store.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <optional>

#include "comm/elastic_task_queue.h"
#include "comm/net_probe.h"
#include "core/error.h"
#include "core/secret_compare.h"

namespace shardlm::comm {

namespace {

constexpr const char* kKeyHeader = "X-Shardlm-Key";
constexpr const char* kTokenHeader = "X-Shardlm-Token";
constexpr const char* kTimeoutHeader = "X-Shardlm-Timeout-Ms";
constexpr const char* kAliveKeyHeader = "X-Shardlm-Alive-Key";
constexpr const char* kAgeHeader = "X-Shardlm-Age-Ms";

using Clock = std::chrono::steady_clock;

}  // namespace

namespace {

constexpr size_t kMaxValueBytes = size_t{1} << 20;  // hellos, Gloo and NCCL addresses: bytes
constexpr int64_t kMaxWaitMs = 3'600'000;

void refuse(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(message, "text/plain");
}

// The wait a /get asks for: digits only, at most an hour; nullopt when malformed.
std::optional<std::chrono::milliseconds> wait_of(const httplib::Request& req) {
  const std::string text = req.get_header_value(kTimeoutHeader);
  if (text.empty()) return std::chrono::milliseconds(0);
  if (text.size() > 10 || !std::all_of(text.begin(), text.end(), ::isdigit)) return std::nullopt;
  return std::chrono::milliseconds(std::min<int64_t>(std::stoll(text), kMaxWaitMs));
}

}  // namespace

StoreServer::StoreServer(const std::string& host, int port, std::string token)
    : token_(std::move(token)), http_(std::make_unique<httplib::Server>()) {
  http_->new_task_queue = [] { return new ElasticTaskQueue(1024); };
  // SO_REUSEADDR, not httplib's SO_REUSEPORT: a second master on the same port must fail, not
  // share it. The socket is kept to widen its accept queue after bind (httplib listens with 5).
  int listen_fd = -1;
  http_->set_socket_options([&listen_fd](int fd) {
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    listen_fd = fd;
  });
  http_->set_payload_max_length(kMaxValueBytes);
  // Runs before any body is read: a stranger without the token, or a chunked body (which httplib
  // would read without a limit; our client never sends one), is refused at the headers.
  http_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!secret_equals(req.get_header_value(kTokenHeader), token_)) {
      refuse(res, 403,
             req.get_header_value(kTokenHeader).empty()
                 ? "this group needs a cluster token: the master printed it at start-up; start "
                   "this node with SHARDLM_CLUSTER_TOKEN=<token> (or --cluster-token <token>)"
                 : "wrong cluster token: start every node with the same --cluster-token");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.has_header("Transfer-Encoding")) {
      refuse(res, 411, "send the value with a Content-Length");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        refuse(res, 500, "rendezvous store error");  // never the exception's text
      });
  http_->Post("/set", [this](const httplib::Request& req, httplib::Response&) {
    set(req.get_header_value(kKeyHeader), req.body);
  });
  http_->Post("/claim", [this](const httplib::Request& req, httplib::Response& res) {
    const auto stale = wait_of(req);
    if (!stale) return refuse(res, 400, std::string(kTimeoutHeader) + " must be milliseconds");
    std::string holder;
    const std::string alive_key = req.get_header_value(kAliveKeyHeader);
    if (!claim(req.get_header_value(kKeyHeader), req.body, alive_key, *stale, holder)) {
      res.status = 409;
      res.set_header(kAgeHeader, std::to_string(age(alive_key).count()));
      res.set_content(holder, "application/octet-stream");
    }
  });
  http_->Get("/get", [this](const httplib::Request& req, httplib::Response& res) {
    const auto wait = wait_of(req);
    if (!wait) return refuse(res, 400, std::string(kTimeoutHeader) + " must be milliseconds");
    std::string value;
    if (get(req.get_header_value(kKeyHeader), *wait, value)) {
      res.set_content(value, "application/octet-stream");
    } else {
      res.status = 404;
    }
  });
  if (port == 0) {
    port_ = http_->bind_to_any_port(host);
  } else if (http_->bind_to_port(host, port)) {
    port_ = port;
  }
  if (port_ <= 0) {
    fail(
        "cannot listen on {}:{} for the rendezvous (--dist-init-addr): the port is in use or the "
        "address is not this machine's",
        host, port);
  }
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);  // a burst of ranks must not be reset
  thread_ = std::thread([this] { http_->listen_after_bind(); });
}

StoreServer::~StoreServer() {
  // httplib's stop() does nothing until its thread has begun listening: a store destroyed at
  // once would leave that thread in accept() forever.
  for (int i = 0; i < 400 && !http_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

void StoreServer::set(const std::string& key, std::string value) {
  {
    std::lock_guard lock(mu_);
    kv_[key] = std::move(value);
    set_at_[key] = Clock::now();
  }
  cv_.notify_all();
}

void StoreServer::erase(const std::string& key) {
  std::lock_guard lock(mu_);
  kv_.erase(key);
  set_at_.erase(key);
}

bool StoreServer::claim(const std::string& key, std::string value, const std::string& alive_key,
                        std::chrono::milliseconds stale, std::string& holder) {
  {
    std::lock_guard lock(mu_);
    const auto it = kv_.find(key);
    const auto alive = set_at_.find(alive_key);
    const bool gone = alive == set_at_.end() || Clock::now() - alive->second > stale;
    if (it != kv_.end() && !gone) {
      holder = it->second;
      return false;
    }
    kv_[key] = std::move(value);
    set_at_[key] = set_at_[alive_key] = Clock::now();  // the new holder counts as alive
  }
  cv_.notify_all();
  return true;
}

std::chrono::milliseconds StoreServer::age(const std::string& key) {
  std::lock_guard lock(mu_);
  const auto it = set_at_.find(key);
  if (it == set_at_.end()) return std::chrono::milliseconds(-1);
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - it->second);
}

bool StoreServer::peek(const std::string& key, std::string& value) {
  std::lock_guard lock(mu_);
  const auto it = kv_.find(key);
  if (it == kv_.end()) return false;
  value = it->second;
  return true;
}

bool StoreServer::get(const std::string& key, std::chrono::milliseconds timeout,
                      std::string& value) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return kv_.count(key) > 0; })) return false;
  value = kv_.at(key);
  return true;
}

StoreClient::StoreClient(std::string host, int port, std::string token,
                         std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), token_(std::move(token)), timeout_(timeout) {}

std::string StoreClient::address() const {
  return host_ + ":" + std::to_string(port_);
}

namespace {

// Calls `attempt` until it returns a response or the deadline passes; a refused connection (the
// master not up yet) is retried, with a log line every 10 s so a waiting node says what it waits
// for.
template <typename F>
httplib::Result with_retries(Clock::time_point deadline, const std::string& address, F attempt) {
  const auto start = Clock::now();
  auto next_log = start + std::chrono::seconds(10);
  while (true) {
    httplib::Result r = attempt();
    if (r || Clock::now() >= deadline) return r;
    if (Clock::now() >= next_log) {
      spdlog::info("the master's rendezvous at {} is not answering yet ({}); {:.0f} s, retrying",
                   address, httplib::to_string(r.error()),
                   std::chrono::duration<double>(Clock::now() - start).count());
      next_log += std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Why the master's rendezvous could not be reached, in words: a fresh TCP probe tells a refused
// connection (nothing listens: the master is not started, or the port is wrong) from silence (a
// firewall drops the packets, or the host is down) and from a missing route.
std::string unreachable_message(const std::string& address, std::chrono::milliseconds waited,
                                httplib::Error error) {
  const size_t colon = address.rfind(':');
  const std::string probe =
      probe_tcp(address.substr(0, colon), std::stoi(address.substr(colon + 1)),
                std::chrono::milliseconds(2000));
  std::string cause;
  if (probe.find("refused") != std::string::npos) {
    cause =
        "nothing listens there: the master node is not started (yet), or --dist-init-addr's "
        "port differs from the master's";
  } else if (probe.find("no answer") != std::string::npos) {
    cause = "no answer at all: a firewall drops the port, or the host is down or unreachable";
  } else if (probe == "ok") {
    cause =
        "it accepts connections but does not answer as a shardlm rendezvous: another "
        "program holds that port";
  } else {
    cause = probe + ": check the address in --dist-init-addr and this node's routes";
  }
  return fmt::format("cannot reach the master's rendezvous at {} within {:.0f} s ({}): {}", address,
                     std::chrono::duration<double>(waited).count(), httplib::to_string(error),
                     cause);
}

}  // namespace

void StoreClient::set(const std::string& key, const std::string& value) {
  httplib::Client cli(host_, port_);
  cli.set_connection_timeout(std::chrono::seconds(5));
  const httplib::Headers headers{{kKeyHeader, key}, {kTokenHeader, token_}};
  const auto r = with_retries(Clock::now() + timeout_, address(), [&] {
    return cli.Post("/set", headers, value, "application/octet-stream");
  });
  if (!r) fail("{}", unreachable_message(address(), timeout_, r.error()));
  if (r->status == 403) fail("the master at {} refused this node: {}", address(), r->body);
  if (r->status != 200)
    fail("rendezvous at {}: set '{}' failed (HTTP {})", address(), key, r->status);
}

bool StoreClient::claim(const std::string& key, const std::string& value,
                        const std::string& alive_key, std::chrono::milliseconds stale,
                        std::string& holder, std::chrono::milliseconds& holder_age) {
  httplib::Client cli(host_, port_);
  cli.set_connection_timeout(std::chrono::seconds(5));
  const httplib::Headers headers{{kKeyHeader, key},
                                 {kTokenHeader, token_},
                                 {kAliveKeyHeader, alive_key},
                                 {kTimeoutHeader, std::to_string(stale.count())}};
  const auto r = with_retries(Clock::now() + timeout_, address(), [&] {
    return cli.Post("/claim", headers, value, "application/octet-stream");
  });
  if (!r) fail("{}", unreachable_message(address(), timeout_, r.error()));
  if (r->status == 403) fail("the master at {} refused this node: {}", address(), r->body);
  if (r->status == 409) {
    holder = r->body;
    const std::string age = r->get_header_value(kAgeHeader);
    holder_age = std::chrono::milliseconds(!age.empty() && age.size() < 12 &&
                                                   std::all_of(age.begin(), age.end(), ::isdigit)
                                               ? std::stoll(age)
                                               : 0);
    return false;
  }
  if (r->status != 200)
    fail("rendezvous at {}: claim '{}' failed (HTTP {})", address(), key, r->status);
  return true;
}

bool StoreClient::try_get(const std::string& key, std::chrono::milliseconds timeout,
                          std::string& value) {
  const auto deadline = Clock::now() + timeout;
  httplib::Client cli(host_, port_);
  cli.set_connection_timeout(std::chrono::seconds(5));
  cli.set_read_timeout(timeout + std::chrono::seconds(5));
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const httplib::Headers headers{
        {kKeyHeader, key},
        {kTokenHeader, token_},
        {kTimeoutHeader, std::to_string(std::max<int64_t>(0, left.count()))}};
    const auto r = with_retries(deadline, address(), [&] { return cli.Get("/get", headers); });
    if (!r) fail("{}", unreachable_message(address(), timeout, r.error()));
    if (r->status == 403) fail("the master at {} refused this node: {}", address(), r->body);
    if (r->status == 200) {
      value = r->body;
      return true;
    }
    if (Clock::now() >= deadline) return false;
  }
}

std::string StoreClient::get(const std::string& key) {
  return get(key, timeout_);
}

std::string StoreClient::get(const std::string& key, std::chrono::milliseconds timeout) {
  std::string value;
  if (!try_get(key, timeout, value)) {
    fail("rendezvous at {}: '{}' did not appear within {} ms", address(), key, timeout.count());
  }
  return value;
}

}  // namespace shardlm::comm
