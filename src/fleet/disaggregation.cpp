// The prefill route and the decode worker's KV transfer listener.
#include "fleet/disaggregation.h"

#include <spdlog/spdlog.h>

#include <atomic>
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
  std::atomic<int64_t> transfers{0}, blocks{0}, bytes{0}, failed{0};
  std::atomic<int64_t> transfer_us{0};  // connect to acknowledgement, summed
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

// Runs the prompt through the engine for its K/V: one greedy token, nothing streamed.
void run_prefill(const server::ServingContext& ctx, const std::vector<int32_t>& prompt) {
  SamplingParams p;
  p.temperature = 0.f;
  p.max_tokens = 1;
  p.ignore_eos = true;
  const auto stream = ctx.engine.submit(prompt, p);
  while (!stream->done()) {
    const auto out = stream->next(std::chrono::seconds(1));
    if (out && out->finished() && !stream->error().empty()) {
      throw ApiError(503, fmt::format("the prefill failed: {}", stream->error()));
    }
  }
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
    run_prefill(ctx_, prompt);
    const double computed = monotonic_seconds();
    KvBlockSet set;
    ctx_.engine.run_between_steps([&](Engine& e) { set = export_prompt_blocks(e, prompt); }).get();
    KvSendResult sent;
    try {
      sent = send_kv_blocks(call.target, static_cast<uint64_t>(ids_++), set);
    } catch (const std::exception& e) {
      ++stats_.failed;
      throw ApiError(502, e.what());
    }
    ++stats_.transfers;
    stats_.blocks += static_cast<int64_t>(set.n_blocks());
    stats_.bytes += static_cast<int64_t>(sent.bytes);
    stats_.transfer_us += static_cast<int64_t>(sent.seconds * 1e6);
    res.set_content(Json{{"prompt_tokens", prompt.size()},
                         {"blocks", set.n_blocks()},
                         {"blocks_stored", sent.blocks_stored},
                         {"bytes", sent.bytes},
                         {"prefill_seconds", computed - start},
                         {"transfer_seconds", sent.seconds}}
                        .dump(),
                    "application/json");
  }

  Json stats() const {
    return {{"role", "prefill"},
            {"transfers", stats_.transfers.load()},
            {"blocks", stats_.blocks.load()},
            {"bytes", stats_.bytes.load()},
            {"failed", stats_.failed.load()},
            {"transfer_seconds", static_cast<double>(stats_.transfer_us.load()) * 1e-6}};
  }

 private:
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
