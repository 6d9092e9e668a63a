// call_prefill: one blocking POST /kv/prefill.
#include "fleet/prefill_call.h"

#include "engine/request.h"
#include "fleet/disaggregation.h"

namespace shardlm::fleet {

namespace {

// The error message of a worker's JSON error body, else the body's start.
std::string error_message(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    return j["error"].value("message", body.substr(0, 300));
  }
  return body.substr(0, 300);
}

}  // namespace

PrefillOutcome call_prefill(const WorkerInfo& prefill, const WorkerInfo& decode,
                            const std::string& route, const nlohmann::json& request,
                            const httplib::Headers& headers, std::chrono::milliseconds timeout) {
  const double start = monotonic_seconds();
  httplib::Client cli(prefill.url);
  cli.set_connection_timeout(std::chrono::seconds(2));
  cli.set_read_timeout(timeout);
  cli.set_write_timeout(std::chrono::seconds(30));
  cli.set_keep_alive(false);
  cli.set_tcp_nodelay(true);
  const nlohmann::json body{{"version", kPrefillCallVersion},
                            {"route", route},
                            {"request", request},
                            {"target", decode.kv_transfer}};
  PrefillOutcome out;
  const auto res = cli.Post("/kv/prefill", headers, body.dump(), "application/json");
  out.seconds = monotonic_seconds() - start;
  if (!res) {
    out.refused = res.error() == httplib::Error::Connection;
    out.error = httplib::to_string(res.error());
    return out;
  }
  out.status = res->status;
  if (res->status != 200) {
    out.error = error_message(res->body);
    return out;
  }
  const auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (!j.is_object() || !j.contains("blocks_stored") || !j["blocks_stored"].is_number_integer()) {
    out.error = "a malformed answer to /kv/prefill";
    return out;
  }
  out.ok = true;
  out.blocks = j["blocks_stored"].get<int64_t>();
  return out;
}

}  // namespace shardlm::fleet
