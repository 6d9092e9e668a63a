// The data-parallel controller's routes and life (dp_controller.h).
#include "fleet/dp_controller.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/shutdown_signals.h"
#include "fleet/dp_replicas.h"
#include "fleet/relay.h"
#include "parallel/dp_balancer.h"
#include "server/openai/api_error.h"
#include "server/web_routes.h"

namespace shardlm::fleet {

namespace {

using server::ApiError;
using Json = nlohmann::json;
constexpr size_t kMaxAttempts = 3;  // replicas tried for a request before its first output

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

std::string label(int replica) {
  return fmt::format("{{replica=\"{}\"}}", replica);
}

// One gauge or counter family with a sample per replica.
void family(std::string& out, const std::string& name, const char* type, const char* help,
            const std::vector<ReplicaView>& views, double (*value)(const ReplicaView&)) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  for (const ReplicaView& v : views)
    out += fmt::format("{}{} {}\n", name, label(v.replica), value(v));
}

class Controller {
 public:
  explicit Controller(const DataParallelArgs& a)
      : args_(a), replicas_(a.layout, a.own, a.threads), balancer_(a.layout.method) {}

  ReplicaSet& replicas() { return replicas_; }
  void register_routes(server::HttpServer& http);
  void refuse_new_requests() { stopping_ = true; }

 private:
  void health(httplib::Response& res) const;
  std::string metrics() const;
  void relay(const server::HttpRequest& req, httplib::Response& res);
  std::string not_serving() const;

  DataParallelArgs args_;
  ReplicaSet replicas_;
  parallel::LoadBalancer balancer_;
  std::atomic<bool> stopping_{false};
};

Json view_json(const ReplicaView& v) {
  Json j{{"replica", v.replica},
         {"state", replica_state_name(v.state)},
         {"ranks", v.ranks},
         {"pid", v.pid},
         {"port", v.api_port},
         {"outstanding", v.outstanding},
         {"running", v.running},
         {"waiting", v.waiting},
         {"kv_cache_usage", v.kv_usage},
         {"requests_served", v.served},
         {"restarts", v.restarts}};
  if (v.rendezvous_port) j["rendezvous_port"] = v.rendezvous_port;
  if (!v.reason.empty()) j["reason"] = v.reason;
  return j;
}

void Controller::health(httplib::Response& res) const {
  const auto views = replicas_.snapshot();
  Json list = Json::array();
  size_t serving = 0;
  for (const ReplicaView& v : views) {
    serving += v.state == ReplicaState::kServing;
    list.push_back(view_json(v));
  }
  const auto& l = args_.layout;
  Json j{{"status", serving == views.size() ? "ok"
                    : serving > 0           ? "degraded"
                                            : "unavailable"},
         {"data_parallel",
          {{"dp", l.dp},
           {"tp", l.tp},
           {"pp", l.pp},
           {"load_balance_method", parallel::load_balance_method_name(l.method)}}},
         {"replicas_serving", serving},
         {"replicas", list}};
  res.status = serving > 0 ? 200 : 503;
  res.set_content(j.dump(), "application/json");
}

std::string Controller::metrics() const {
  const auto views = replicas_.snapshot();
  const auto& l = args_.layout;
  std::string out = fmt::format(
      "# HELP shardlm:dp_layout The data-parallel layout (1).\n# TYPE shardlm:dp_layout gauge\n"
      "shardlm:dp_layout{{dp=\"{}\",pp=\"{}\",tp=\"{}\",load_balance_method=\"{}\"}} 1\n",
      l.dp, l.pp, l.tp, parallel::load_balance_method_name(l.method));
  out +=
      "# HELP shardlm:dp_replica_up 1 while the replica serves, 0 otherwise.\n"
      "# TYPE shardlm:dp_replica_up gauge\n";
  for (const ReplicaView& v : views) {
    out += fmt::format("shardlm:dp_replica_up{{replica=\"{}\",state=\"{}\"}} {}\n", v.replica,
                       replica_state_name(v.state), v.state == ReplicaState::kServing ? 1 : 0);
  }
  family(out, "shardlm:num_requests_running", "gauge", "Requests in the replica's running batch.",
         views, [](const ReplicaView& v) { return double(v.running); });
  family(out, "shardlm:num_requests_waiting", "gauge", "Requests waiting in the replica.", views,
         [](const ReplicaView& v) { return double(v.waiting); });
  family(out, "shardlm:kv_cache_usage_perc", "gauge", "The replica's KV cache in use (0-1).", views,
         [](const ReplicaView& v) { return v.kv_usage; });
  family(out, "shardlm:dp_requests_outstanding", "gauge",
         "Requests sent to the replica and not yet finished.", views,
         [](const ReplicaView& v) { return double(v.outstanding); });
  family(out, "shardlm:dp_requests_served_total", "counter", "Requests the replica answered.",
         views, [](const ReplicaView& v) { return double(v.served); });
  family(out, "shardlm:dp_replica_restarts_total", "counter",
         "Times the replica's process was started again.", views,
         [](const ReplicaView& v) { return double(v.restarts); });
  return out;
}

std::string Controller::not_serving() const {
  std::string out;
  for (const ReplicaView& v : replicas_.snapshot()) {
    out += fmt::format("{}replica {} {}{}", out.empty() ? "" : "; ", v.replica,
                       replica_state_name(v.state), v.reason.empty() ? "" : " (" + v.reason + ")");
  }
  return out;
}

void Controller::relay(const server::HttpRequest& req, httplib::Response& res) {
  if (stopping_) throw ApiError(503, "the server is shutting down; retry on another server");
  const std::vector<int> order = balancer_.order(replicas_.live_loads());
  if (order.empty()) {
    throw ApiError(503, fmt::format("no data-parallel replica is serving now: {}; retry shortly",
                                    not_serving()));
  }
  httplib::Headers headers;
  if (req.has_header("Authorization")) {
    headers.emplace("Authorization", req.get_header_value("Authorization"));
  }
  std::string errors;
  const size_t attempts = std::min(order.size(), kMaxAttempts);
  for (size_t i = 0; i < attempts; ++i) {
    const int r = order[i];
    auto hold = replicas_.in_flight(r);
    auto call = UpstreamCall::start(replicas_.url_of(r), req.method, req.path, req.body, headers);
    FirstOutput f = first_output(*call, req);
    if (f.ok) {
      replicas_.on_served(r);
      deliver_answer(
          f, std::move(call), std::move(hold),
          [r](const char* kind, const std::string& error) {
            spdlog::warn(
                "data parallel: {} from replica {} was cut ({}): the client "
                "gets an error",
                std::string(kind) == "failed_mid_stream" ? "a stream" : "an answer", r, error);
          },
          res);
      return;
    }
    if (f.error == "client left") {
      res.status = server::kClientClosedRequest;
      return;
    }
    spdlog::warn("data parallel: replica {} {}: {}{}", r,
                 f.refused ? "refused the connection" : "failed before its first output", f.error,
                 i + 1 < attempts ? "; trying another replica" : "");
    replicas_.mark_unreachable(r, f.error);
    errors += fmt::format("{}replica {} ({})", errors.empty() ? "" : "; ", r, f.error);
  }
  throw ApiError(503, fmt::format("no data-parallel replica answered: {}; retry shortly", errors));
}

void Controller::register_routes(server::HttpServer& http) {
  http.get(
      "/health", [this](const server::HttpRequest&, httplib::Response& res) { health(res); },
      false);
  http.get(
      "/metrics",
      [this](const server::HttpRequest&, httplib::Response& res) {
        res.set_content(metrics(), "text/plain; version=0.0.4");
      },
      false);
  http.get(
      "/version",
      [](const server::HttpRequest&, httplib::Response& res) {
        res.set_content(Json{{"version", SHARDLM_VERSION}}.dump(), "application/json");
      },
      false);
  auto forward = [this](const server::HttpRequest& req, httplib::Response& res) {
    relay(req, res);
  };
  http.get("/v1/models", forward, true);
  http.get("/v1/models/(.+)", forward, true);
  for (const char* path : {"/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"}) {
    http.post(path, forward, true);
  }
}

}  // namespace

int run_data_parallel(const DataParallelArgs& args) {
  spdlog::info("data parallel: {}; load balance {}", args.layout.describe(),
               parallel::load_balance_method_name(args.layout.method));
  Controller controller(args);
  server::HttpServer http(args.http);
  controller.register_routes(http);
  server::register_web_routes(http);
  const int port = http.bind();  // a taken port fails before any replica loads
  const int serving = controller.replicas().start(millis(args.start_timeout));
  if (serving == 0) {
    const int status = controller.replicas().stop(SIGTERM, std::chrono::seconds(5));
    fail("no data-parallel replica started (see the [replica N] lines above); exit status {}",
         status);
  }
  std::thread http_thread([&] { http.serve(); });
  spdlog::info(
      "data parallel: {} of {} replicas serving; the API is on http://{}:{} (OpenAI API "
      "under /v1); Ctrl-C to stop",
      serving, args.layout.dp, args.http.host, port);
  const int sig = shutdown_signals::wait();
  spdlog::info("{} received: passing it on to every replica (they drain, then stop)",
               shutdown_signals::name(sig));
  controller.refuse_new_requests();
  const int status = controller.replicas().stop(sig, millis(args.shutdown_grace + 15));
  http.stop();
  http_thread.join();
  return status;
}

}  // namespace shardlm::fleet
