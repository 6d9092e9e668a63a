// The prefill route and the decode worker's KV transfer listener.
#include "fleet/disaggregation.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/kv_block_transfer.h"
#include "fleet/kv_transfer_client.h"
#include "fleet/kv_transfer_server.h"
#include "fleet/prompt_tokens.h"
#include "server/openai/api_error.h"
#include "server/openai/json_fields.h"

namespace shardlm::fleet {

using Json = nlohmann::json;
using server::ApiError;

DisaggregationMode parse_disaggregation_mode(const std::string& text) {
  if (text.empty() || text == "aggregated") return DisaggregationMode::kAggregated;
  if (text == "prefill") return DisaggregationMode::kPrefill;
  if (text == "decode") return DisaggregationMode::kDecode;
  fail("--disaggregation-mode '{}': use prefill, decode or aggregated", text);
}

const char* disaggregation_mode_name(DisaggregationMode mode) {
  switch (mode) {
    case DisaggregationMode::kPrefill:
      return "prefill";
    case DisaggregationMode::kDecode:
      return "decode";
    default:
      return "aggregated";
  }
}

namespace {

struct SendStats {
  std::atomic<int64_t> transfers{0}, parts{0}, blocks{0}, bytes{0}, failed{0};
  std::atomic<int64_t> transfer_us{0};  // connect to acknowledgement, summed
  // From the end of the prefill's compute to the last part's acknowledgement, summed: the
  // transfer time the overlap did not hide.
  std::atomic<int64_t> exposed_us{0};
};

// What POST /kv/prefill asks for.
struct PrefillCall {
  std::string route;
  Json request;
  std::string target;  // the decode worker's KV transfer host:port
};

PrefillCall parse_prefill_call(const std::string& text) {
  const Json body = server::parse_body(text);
  if (!body.is_object()) throw ApiError(400, "the /kv/prefill body must be a JSON object");
  if (body.value("version", 0) != kPrefillCallVersion) {
    throw ApiError(400,
                   fmt::format("/kv/prefill speaks version {}; upgrade the frontend and the "
                               "workers together",
                               kPrefillCallVersion),
                   "version");
  }
  PrefillCall c;
  c.route = body.value("route", std::string());
  if (c.route != "/v1/completions" && c.route != "/v1/chat/completions") {
    throw ApiError(400, "'route' must be /v1/completions or /v1/chat/completions", "route");
  }
  c.target = body.value("target", std::string());
  if (c.target.empty())
    throw ApiError(400, "'target' (the decode worker's host:port) is required", "target");
  if (!body.contains("request") || !body["request"].is_object()) {
    throw ApiError(400, "'request' (the client's request body) is required", "request");
  }
  c.request = body["request"];
  return c;
}

// Runs the prompt through the engine for its K/V (one greedy token, nothing streamed) and calls
// `on_blocks` between the engine's steps while it runs, so that the full blocks of the chunks
// computed so far can go out while the next chunks compute; then once more at its end.
void run_prefill(const server::ServingContext& ctx, const std::vector<int32_t>& prompt,
                 const std::function<void(bool last)>& on_blocks) {
  SamplingParams p;
  p.temperature = 0.f;
  p.max_tokens = 1;
  p.ignore_eos = true;
  const auto stream = ctx.engine.submit(prompt, p);
  while (!stream->done()) {
    const auto out = stream->next(std::chrono::milliseconds(on_blocks ? 2 : 1000));
    if (out && out->finished() && !stream->error().empty()) {
      throw ApiError(503, fmt::format("the prefill failed: {}", stream->error()));
    }
    if (on_blocks && !stream->done()) on_blocks(false);
  }
  if (on_blocks) on_blocks(true);
}

// SHARDLM_KV_TRANSFER_OVERLAP=0: the blocks go out in one transfer after the whole prefill.
bool overlap_transfer() {
  const char* v = std::getenv("SHARDLM_KV_TRANSFER_OVERLAP");
  return !(v && std::string(v) == "0");
}

class PrefillWorker : public DisaggregatedWorker {
 public:
  explicit PrefillWorker(const server::ServingContext& ctx) : ctx_(ctx) {}
  int kv_port() const override { return 0; }

  void handle(const server::HttpRequest& req, httplib::Response& res) {
    const PrefillCall call = parse_prefill_call(req.body);
    const double start = monotonic_seconds();
    const std::vector<int32_t> prompt = request_prompt_tokens(
        call.route, call.request, ctx_.tokenizer, ctx_.chat_template, ctx_.template_info);
    if (prompt.empty()) throw ApiError(400, "the request has no prompt", "prompt");
    Transfer t;
    t.target = call.target;
    t.id = static_cast<uint64_t>(ids_++);
    double computed = 0;
    const std::function<void(bool)> send_ready = [&](bool last) {
      if (last) computed = monotonic_seconds();
      KvBlockSet set;
      ctx_.engine
          .run_between_steps([&](Engine& e) { set = export_prompt_blocks(e, prompt, t.sent); })
          .get();
      if (set.n_blocks() > t.sent || (last && t.parts == 0)) send(t, set);
    };
    run_prefill(ctx_, prompt, overlap_transfer() ? send_ready : std::function<void(bool)>());
    if (t.parts == 0) send_ready(true);  // without overlap: every block in one transfer
    const double exposed = monotonic_seconds() - computed;
    stats_.exposed_us += static_cast<int64_t>(exposed * 1e6);
    ++stats_.transfers;
    stats_.blocks += static_cast<int64_t>(t.sent);
    res.set_content(Json{{"prompt_tokens", prompt.size()},
                         {"blocks", t.sent},
                         {"blocks_stored", t.result.blocks_stored},
                         {"bytes", t.bytes},
                         {"parts", t.parts},
                         {"prefill_seconds", computed - start},
                         {"transfer_seconds", t.seconds},
                         {"exposed_seconds", exposed}}
                        .dump(),
                    "application/json");
  }

  Json stats() const {
    return {{"role", "prefill"},
            {"transfers", stats_.transfers.load()},
            {"parts", stats_.parts.load()},
            {"blocks", stats_.blocks.load()},
            {"bytes", stats_.bytes.load()},
            {"failed", stats_.failed.load()},
            {"transfer_seconds", static_cast<double>(stats_.transfer_us.load()) * 1e-6},
            {"exposed_seconds", static_cast<double>(stats_.exposed_us.load()) * 1e-6}};
  }

 private:
  // One request's transfer, in one part or several (a part per engine step that completed
  // blocks, each its own connection to the decode worker).
  struct Transfer {
    std::string target;
    uint64_t id = 0;
    size_t sent = 0;  // blocks sent so far
    int parts = 0;
    size_t bytes = 0;
    double seconds = 0;   // spent sending
    KvSendResult result;  // the last part's
  };

  void send(Transfer& t, const KvBlockSet& set) {
    try {
      t.result = send_kv_blocks(t.target, t.id, set);
    } catch (const std::exception& e) {
      ++stats_.failed;
      throw ApiError(502, e.what());
    }
    t.sent = set.n_blocks();
    ++t.parts;
    t.bytes += t.result.bytes;
    t.seconds += t.result.seconds;
    stats_.bytes += static_cast<int64_t>(t.result.bytes);
    stats_.transfer_us += static_cast<int64_t>(t.result.seconds * 1e6);
    ++stats_.parts;
  }

  const server::ServingContext& ctx_;
  SendStats stats_;
  std::atomic<int64_t> ids_{1};
};

class DecodeWorker : public DisaggregatedWorker {
 public:
  DecodeWorker(const server::ServingContext& ctx, const std::string& host, int port)
      : server_(host, port, [&ctx](uint64_t, KvBlockSet set) {
          int64_t stored = 0;
          ctx.engine.run_between_steps([&](Engine& e) { stored = import_prompt_blocks(e, set); })
              .get();
          return stored;
        }) {}
  int kv_port() const override { return server_.port(); }

  Json stats() const {
    const KvTransferStats& s = server_.stats();
    return {{"role", "decode"},
            {"transfers", s.transfers.load()},
            {"blocks", s.blocks.load()},
            {"bytes", s.bytes.load()},
            {"refused", s.refused.load()}};
  }

 private:
  KvTransferServer server_;
};

template <typename W>
void add_stats_route(server::HttpServer& http, const std::shared_ptr<W>& w) {
  http.get(
      "/kv/stats",
      [w = std::weak_ptr<W>(w)](const server::HttpRequest&, httplib::Response& res) {
        if (auto worker = w.lock()) res.set_content(worker->stats().dump(), "application/json");
      },
      false);
}

}  // namespace

std::shared_ptr<DisaggregatedWorker> start_disaggregated_worker(DisaggregationMode mode,
                                                                server::HttpServer& http,
                                                                const server::ServingContext& ctx,
                                                                const std::string& kv_host,
                                                                int kv_port) {
  if (mode == DisaggregationMode::kPrefill) {
    auto w = std::make_shared<PrefillWorker>(ctx);
    http.post(
        "/kv/prefill",
        [p = w.get()](const server::HttpRequest& req, httplib::Response& res) {
          p->handle(req, res);
        },
        true);
    add_stats_route(http, w);
    return w;
  }
  if (mode == DisaggregationMode::kDecode) {
    auto w = std::make_shared<DecodeWorker>(ctx, kv_host, kv_port);
    spdlog::info("decode worker: KV transfers on port {}", w->kv_port());
    add_stats_route(http, w);
    return w;
  }
  return nullptr;
}

}  // namespace shardlm::fleet
