// WorkerInfo to and from JSON.
#include "fleet/worker_info.h"

#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>
#include <regex>

namespace shardlm::fleet {

std::string WorkerInfo::to_json() const {
  return nlohmann::json{{"version", kWorkerInfoVersion},
                        {"id", id},
                        {"model", model},
                        {"url", url},
                        {"block_size", block_size},
                        {"tp", tp},
                        {"pp", pp},
                        {"world_size", world_size},
                        {"role", role},
                        {"kv_transfer", kv_transfer}}
      .dump();
}

namespace {

template <typename T>
bool take(const nlohmann::json& j, const char* name, T& out, std::string& why) {
  if (!j.contains(name)) {
    why = fmt::format("no '{}' field", name);
    return false;
  }
  try {
    out = j.at(name).get<T>();
    return true;
  } catch (const std::exception&) {
    why = fmt::format("'{}' has the wrong type", name);
    return false;
  }
}

bool valid_url(const std::string& url) {
  static const std::regex pattern(R"(^http://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$)");
  return std::regex_match(url, pattern);
}

}  // namespace

std::optional<WorkerInfo> parse_worker_info(const std::string& text, std::string& why) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    why = "not a JSON object";
    return std::nullopt;
  }
  WorkerInfo w;
  int version = 0;
  if (!take(j, "version", version, why) || !take(j, "id", w.id, why) ||
      !take(j, "model", w.model, why) || !take(j, "url", w.url, why) ||
      !take(j, "block_size", w.block_size, why)) {
    return std::nullopt;
  }
  if (version != kWorkerInfoVersion) {
    why = fmt::format("version {} (this frontend reads {})", version, kWorkerInfoVersion);
    return std::nullopt;
  }
  if (w.id.empty() || w.model.empty()) why = "empty id or model";
  if (!valid_url(w.url)) why = fmt::format("url '{}' is not http://host:port", w.url);
  if (w.block_size < 1) why = fmt::format("block_size {} is below 1", w.block_size);
  if (!why.empty()) return std::nullopt;
  try {
    w.tp = j.value("tp", 1);
    w.pp = j.value("pp", 1);
    w.world_size = j.value("world_size", 1);
    w.role = j.value("role", std::string("aggregated"));
    w.kv_transfer = j.value("kv_transfer", std::string());
  } catch (const std::exception&) {
    why = "'tp', 'pp', 'world_size', 'role' or 'kv_transfer' has the wrong type";
    return std::nullopt;
  }
  if (w.role != "aggregated" && w.role != "prefill" && w.role != "decode") {
    why = fmt::format("role '{}' (aggregated, prefill or decode)", w.role.substr(0, 40));
    return std::nullopt;
  }
  if (w.role == "decode" && w.kv_transfer.empty()) {
    why = "a decode worker without its 'kv_transfer' address";
    return std::nullopt;
  }
  return w;
}

std::string new_worker_id() {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  return fmt::format("{}-{}-{:08x}", host, ::getpid(), rd());
}

}  // namespace shardlm::fleet
