// The frontend's routes: discovery-backed /v1/models, relayed generation, /health, /metrics.
#include "fleet/frontend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <thread>

#include "core/error.h"
#include "core/shutdown_signals.h"
#include "fleet/frontend_metrics.h"
#include "fleet/kv_index.h"
#include "fleet/nats_bus.h"
#include "fleet/prefill_call.h"
#include "fleet/prompt_tokens.h"
#include "fleet/relay.h"
#include "fleet/stream_migration.h"
#include "fleet/upstream_call.h"
#include "fleet/worker_directory.h"
#include "server/openai/api_error.h"
#include "server/openai/json_fields.h"
#include "server/sse.h"
#include "server/web_routes.h"

namespace shardlm::fleet {

namespace {

using server::ApiError;
using Json = nlohmann::json;

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// How long a worker that answered 503 (unhealthy or draining) is left out (at most --down-for).
constexpr std::chrono::milliseconds kUnhealthyHold{1000};

bool generation_route(const std::string& path) {
  return path == "/v1/completions" || path == "/v1/chat/completions";
}

class Frontend {
 public:
  explicit Frontend(const FrontendArgs& a);
  void register_routes(server::HttpServer& http);

 private:
  void health(httplib::Response& res) const;
  void models(httplib::Response& res) const;
  void model(const server::HttpRequest& req, httplib::Response& res) const;
  void relay(const server::HttpRequest& req, httplib::Response& res);
  // A request started on a worker, past its first output.
  struct Started {
    FirstOutput f;
    std::shared_ptr<UpstreamCall> call;
    std::shared_ptr<Router::InFlight> in_flight;
    WorkerInfo worker;
  };
  // Starts `req` (its body parsed: `body`) on a worker of `model` other than `exclude`, trying
  // them in routing order (a decode worker's prefill first); nullopt when the client left.
  // Throws ApiError (503) when none answered.
  std::optional<Started> start(const server::HttpRequest& req, const Json& body,
                               const std::string& model, const std::string& exclude);
  // How a migratable stream of `req` moves to another worker (fleet/stream_migration.h).
  MigrationHooks migration_hooks(const server::HttpRequest& req, const std::string& model);
  // A disaggregated request's prefill for decode worker `decode`: true once a prefill worker has
  // sent it the prompt's KV; false (with `error`) when the decode worker did not take them.
  // Throws ApiError when the request is bad (the prefill worker's 4xx) or no prefill worker
  // answers.
  bool prefill_for(const WorkerInfo& decode, const std::vector<WorkerInfo>& prefill,
                   const std::string& model, const server::HttpRequest& req, const Json& body,
                   const httplib::Headers& headers, std::string& error);
  std::string resolve_model(const Json& body) const;
  std::vector<uint64_t> prompt_hashes(const std::string& path, const Json& body,
                                      int block_size) const;
  bool commit(FirstOutput& f, std::shared_ptr<UpstreamCall> call,
              std::shared_ptr<Router::InFlight> in_flight, const WorkerInfo& w,
              httplib::Response& res);
  void refresh_state() const;
  Json model_card(const std::string& name) const;

  FrontendArgs args_;
  std::atomic<uint64_t> prefill_turn_{0};
  KvIndex index_;
  Router router_;
  mutable FrontendMetrics metrics_;
  std::unique_ptr<PromptTokens> tokens_;
  std::unique_ptr<NatsBus> bus_;
  std::unique_ptr<WorkerDirectory> directory_;
};

Frontend::Frontend(const FrontendArgs& a)
    : args_(a), router_(a.mode, a.weights, index_), metrics_(router_mode_name(a.mode)) {
  if (a.mode == RouterMode::kKv) {
    if (a.model.empty()) {
      fail("--router-mode kv needs --model: the workers' model file, whose tokenizer and chat "
           "template give the prompt's KV block hashes");
    }
    tokens_ = std::make_unique<PromptTokens>(a.model);
  }
  if (!a.nats_server.empty()) {
    bus_ = std::make_unique<NatsBus>(a.nats_server);
    bus_->subscribe(std::string(kKvEventsSubject) + "*",
                    [this](std::string_view, std::string_view d) { index_.apply_events(d); });
    bus_->subscribe(std::string(kLoadSubject) + "*",
                    [this](std::string_view, std::string_view d) { index_.apply_load(d); });
  }
  directory_ = std::make_unique<WorkerDirectory>(
      EtcdClient(parse_etcd_endpoints(a.etcd_endpoints)), a.allowed_models,
      millis(a.poll_interval), [this](const std::set<std::string>& ids) { index_.retain(ids); });
}

void Frontend::refresh_state() const {
  metrics_.set_state(directory_->all().size(), directory_->etcd_ok(),
                     !bus_ || bus_->connected());
}

void Frontend::health(httplib::Response& res) const {
  const bool etcd = directory_->etcd_ok(), nats = !bus_ || bus_->connected();
  const size_t workers = directory_->all().size();
  Json j{{"status", etcd && nats ? "ok" : "degraded"}, {"etcd", etcd}, {"workers", workers},
         {"router_mode", router_mode_name(args_.mode)}};
  j["nats"] = bus_ ? Json(nats) : Json(nullptr);
  if (workers == 0) j["status"] = "no workers";
  res.status = workers == 0 ? 503 : 200;
  res.set_content(j.dump(), "application/json");
}

Json Frontend::model_card(const std::string& name) const {
  static const int64_t created = static_cast<int64_t>(std::time(nullptr));
  return {{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", "shardlm"}};
}

void Frontend::models(httplib::Response& res) const {
  Json data = Json::array();
  for (const std::string& m : directory_->models()) data.push_back(model_card(m));
  res.set_content(Json{{"object", "list"}, {"data", data}}.dump(), "application/json");
}

void Frontend::model(const server::HttpRequest& req, httplib::Response& res) const {
  const std::string name = req.matches[1];
  if (!directory_->models().count(name)) {
    throw ApiError(404, fmt::format("The model '{}' does not exist (see GET /v1/models)",
                                    name.substr(0, 200)), "model", "model_not_found");
  }
  res.set_content(model_card(name).dump(), "application/json");
}

std::string Frontend::resolve_model(const Json& body) const {
  const std::set<std::string> models = directory_->models();
  const auto given = server::string_field(body, "model");
  std::string names;
  for (const auto& m : models) names += (names.empty() ? "'" : ", '") + m + "'";
  if (given && !given->empty()) {
    if (models.count(*given)) return *given;
    throw ApiError(404, fmt::format("The model '{}' does not exist; this fleet serves {} (see GET "
                                    "/v1/models)", given->substr(0, 200),
                                    names.empty() ? "none yet" : names),
                   "model", "model_not_found");
  }
  if (models.size() == 1) return *models.begin();
  throw ApiError(models.empty() ? 503 : 400,
                 models.empty() ? "no worker is registered yet; start `shardlm serve` with "
                                  "--etcd-endpoints, or retry shortly"
                                : fmt::format("'model' is required: this fleet serves {}", names),
                 "model");
}

std::vector<uint64_t> Frontend::prompt_hashes(const std::string& path, const Json& body,
                                              int block_size) const {
  if (!tokens_ || !generation_route(path)) return {};
  return prefix_block_hashes(tokens_->tokens(path, body), block_size);
}

bool Frontend::commit(FirstOutput& f, std::shared_ptr<UpstreamCall> call,
                      std::shared_ptr<Router::InFlight> in_flight, const WorkerInfo& w,
                      httplib::Response& res) {
  const std::string id = w.id;
  deliver_answer(f, std::move(call), std::move(in_flight),
                 [this, id](const char* kind, const std::string& error) {
                   metrics_.on_error(kind, id);
                   if (std::string(kind) == "failed_mid_stream") {
                     spdlog::warn("fleet: stream from worker {} cut: {}", id, error);
                   }
                 },
                 res);
  return true;
}

bool Frontend::prefill_for(const WorkerInfo& decode, const std::vector<WorkerInfo>& prefill,
                           const std::string& model, const server::HttpRequest& req,
                           const Json& body, const httplib::Headers& headers, std::string& error) {
  if (prefill.empty()) {
    metrics_.on_error("no_prefill_worker");
    throw ApiError(503, fmt::format("no prefill worker of '{}' is reachable now (decode workers "
                                    "need one); retry shortly", model));
  }
  const size_t first = prefill_turn_.fetch_add(1);
  const size_t attempts = std::min<size_t>(prefill.size(), std::max(1, args_.max_attempts));
  std::string errors;
  for (size_t i = 0; i < attempts; ++i) {
    const WorkerInfo& p = prefill[(first + i) % prefill.size()];
    const PrefillOutcome o = call_prefill(p, decode, req.path, body, headers,
                                          millis(args_.prefill_timeout));
    if (o.ok) {
      metrics_.on_prefill(p.id, o.blocks, o.seconds);
      return true;
    }
    if (o.status >= 400 && o.status < 500) throw ApiError(o.status, o.error);
    if (o.status == 502) {  // the prefill ran; the decode worker did not take its KV
      metrics_.on_error("kv_transfer_failed", decode.id);
      error = o.error;
      return false;
    }
    metrics_.on_error(o.refused ? "prefill_refused" : "prefill_failed", p.id);
    spdlog::warn("fleet: prefill worker {} at {} {}: {}{}", p.id, p.url,
                 o.refused ? "refused the connection" : "failed", o.error,
                 i + 1 < attempts ? "; trying another prefill worker" : "");
    if (o.refused) directory_->mark_down(p.id, millis(args_.down_for));
    errors += fmt::format("{}{} ({})", errors.empty() ? "" : "; ", p.url, o.error);
  }
  throw ApiError(503, fmt::format("no prefill worker of '{}' answered: {}; retry shortly", model,
                                  errors));
}

std::optional<Frontend::Started> Frontend::start(const server::HttpRequest& req, const Json& body,
                                                 const std::string& model,
                                                 const std::string& exclude) {
  auto candidates = directory_->workers_of(model);
  // Prefill workers take no requests of their own: they serve decode workers' prefills.
  std::vector<WorkerInfo> prefill;
  for (auto it = candidates.begin(); it != candidates.end();) {
    if (it->role != "prefill" && it->id != exclude) {
      ++it;
      continue;
    }
    if (it->role == "prefill") prefill.push_back(std::move(*it));
    it = candidates.erase(it);
  }
  if (candidates.empty()) {
    metrics_.on_error("no_worker");
    throw ApiError(503, fmt::format("no {}worker of '{}' is reachable now; retry shortly",
                                    prefill.empty() ? "" : "decode ", model));
  }
  const auto hashes = prompt_hashes(req.path, body, candidates.front().block_size);
  RouteDecision d = router_.route(std::move(candidates), hashes);
  httplib::Headers headers;
  if (req.has_header("Authorization")) {
    headers.emplace("Authorization", req.get_header_value("Authorization"));
  }
  std::string errors;
  const size_t attempts = std::min<size_t>(d.order.size(), std::max(1, args_.max_attempts));
  for (size_t i = 0; i < attempts; ++i) {
    const WorkerInfo& w = d.order[i];
    metrics_.on_decision(w.id, i == 0 ? d.request_blocks : 0, i == 0 ? d.overlap_blocks : 0);
    if (!hashes.empty()) index_.predict(w.id, hashes);
    auto in_flight = std::make_shared<Router::InFlight>(router_, w.id,
                                                         static_cast<int>(hashes.size()) + 1);
    if (w.role == "decode" && generation_route(req.path)) {
      std::string why;
      if (!prefill_for(w, prefill, model, req, body, headers, why)) {
        spdlog::warn("fleet: decode worker {} did not take the KV blocks: {}{}", w.id, why,
                     i + 1 < attempts ? "; trying another worker" : "");
        errors += fmt::format("{}{} ({})", errors.empty() ? "" : "; ", w.url, why);
        continue;
      }
    }
    auto call = UpstreamCall::start(w.url, req.method, req.path, req.body, headers);
    FirstOutput f = first_output(*call, req);
    if (f.ok) {
      metrics_.on_relayed(w.id, model);
      return Started{std::move(f), std::move(call), std::move(in_flight), w};
    }
    if (f.error == "client left") return std::nullopt;
    metrics_.on_error(f.refused ? "refused" : "failed_before_output", w.id);
    spdlog::warn("fleet: worker {} at {} {}: {}{}", w.id, w.url,
                 f.refused ? "refused the connection" : "failed before its first output", f.error,
                 i + 1 < attempts ? "; trying another worker" : "");
    if (f.refused) directory_->mark_down(w.id, millis(args_.down_for));
    // A worker up but unhealthy (its group re-forming) or draining: left out for a moment, so
    // that the next requests do not each try it first.
    if (f.status == 503) {
      directory_->mark_down(w.id, std::min(millis(args_.down_for), kUnhealthyHold));
    }
    errors += fmt::format("{}{} ({})", errors.empty() ? "" : "; ", w.url, f.error);
  }
  throw ApiError(503, fmt::format("no worker of '{}' answered: {}; retry shortly", model, errors));
}

namespace {

bool is_stream(const FirstOutput& f) {
  return f.status == 200 && f.content_type.rfind("text/event-stream", 0) == 0;
}

// The client's request as the frontend sends it on: method, path, its Authorization, `body`.
server::HttpRequest forwarded(const std::string& method, const std::string& path,
                              const std::string& auth, const Json& body,
                              std::function<bool()> connected) {
  server::HttpRequest r;
  r.method = method;
  r.path = path;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (!auth.empty()) r.headers.emplace("Authorization", auth);
  r.client_connected = std::move(connected);
  return r;
}

}  // namespace

MigrationHooks Frontend::migration_hooks(const server::HttpRequest& req,
                                         const std::string& model) {
  MigrationHooks h;
  const std::string method = req.method, path = req.path;
  const std::string auth = req.has_header("Authorization") ? req.get_header_value("Authorization")
                                                           : std::string();
  h.restart = [this, method, path, auth, model](const Json& body, const std::string& exclude,
                                                const std::function<bool()>& connected,
                                                std::string& why) -> std::optional<StreamStart> {
    try {
      auto s = start(forwarded(method, path, auth, body, connected), body, model, exclude);
      if (!s) {
        why = "the client left";
        return std::nullopt;
      }
      if (!is_stream(s->f)) {
        why = fmt::format("worker {} answered {}: {}", s->worker.id, s->f.status,
                          s->f.data.substr(0, 300));
        return std::nullopt;
      }
      return StreamStart{std::move(s->call), std::move(s->in_flight), std::move(s->f.data),
                         s->worker.id};
    } catch (const ApiError& e) {
      why = e.what();
      return std::nullopt;
    }
  };
  h.on_cut = [this](const std::string& worker, const std::string& error) {
    metrics_.on_error("failed_mid_stream", worker);
    spdlog::warn("fleet: stream from worker {} cut: {}", worker, error);
  };
  h.on_migrated = [this](const std::string& from, const std::string& to, size_t tokens) {
    metrics_.on_error("migrated_mid_stream", from);
    spdlog::info("fleet: stream moved from worker {} to {} after {} tokens", from, to, tokens);
  };
  return h;
}

void Frontend::relay(const server::HttpRequest& req, httplib::Response& res) {
  const Json body = server::parse_body(req.body);
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  const std::string model = resolve_model(body);
  if (args_.migration_limit == 0 || !migratable_stream(req.path, body)) {
    auto s = start(req, body, model, "");
    if (!s) {
      res.status = server::kClientClosedRequest;
      return;
    }
    commit(s->f, std::move(s->call), std::move(s->in_flight), s->worker, res);
    return;
  }
  const Json sent = with_token_ids(body);
  const std::string auth = req.has_header("Authorization") ? req.get_header_value("Authorization")
                                                           : std::string();
  auto s = start(forwarded(req.method, req.path, auth, sent, req.client_connected), sent, model, "");
  if (!s) {
    res.status = server::kClientClosedRequest;
    return;
  }
  if (!is_stream(s->f)) {  // an error answer: passed on as it is
    commit(s->f, std::move(s->call), std::move(s->in_flight), s->worker, res);
    return;
  }
  deliver_migrating_stream(StreamStart{std::move(s->call), std::move(s->in_flight),
                                       std::move(s->f.data), s->worker.id},
                           body, args_.migration_limit, migration_hooks(req, model), res);
}

void Frontend::register_routes(server::HttpServer& http) {
  http.get("/health", [this](const server::HttpRequest&, httplib::Response& res) { health(res); },
           false);
  http.get(
      "/metrics",
      [this](const server::HttpRequest&, httplib::Response& res) {
        refresh_state();
        res.set_content(metrics_.render(), "text/plain; version=0.0.4");
      },
      false);
  http.get(
      "/version",
      [](const server::HttpRequest&, httplib::Response& res) {
        res.set_content(Json{{"version", SHARDLM_VERSION}}.dump(), "application/json");
      },
      false);
  http.get("/v1/models", [this](const server::HttpRequest&, httplib::Response& res) { models(res); },
           true);
  http.get("/v1/models/(.+)",
           [this](const server::HttpRequest& req, httplib::Response& res) { model(req, res); },
           true);
  for (const char* path : {"/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"}) {
    http.post(path,
              [this](const server::HttpRequest& req, httplib::Response& res) { relay(req, res); },
              true);
  }
}

}  // namespace

int run_frontend(const FrontendArgs& args) {
  Frontend frontend(args);
  server::HttpServer http(args.http);
  frontend.register_routes(http);
  server::register_web_routes(http);
  const int port = http.bind();
  std::thread http_thread([&] { http.serve(); });
  spdlog::info("frontend (router mode {}) on http://{}:{} (OpenAI API under /v1); etcd {}{}",
               router_mode_name(args.mode), args.http.host, port, args.etcd_endpoints,
               args.nats_server.empty() ? "" : ", NATS " + args.nats_server);
  const int sig = shutdown_signals::wait();
  spdlog::info("{} received: frontend stopping", shutdown_signals::name(sig));
  http.stop();
  http_thread.join();
  return 0;
}

}  // namespace shardlm::fleet
