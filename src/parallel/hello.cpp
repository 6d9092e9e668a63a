// Hello: JSON encoding, version check and the field-by-field comparison.
#include "parallel/hello.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/weights_fingerprint.h"

namespace shardlm::parallel {

std::string Hello::to_json() const {
  return nlohmann::json{{"hello_version", hello_version},
                        {"rank", rank},
                        {"host", host},
                        {"address", address},
                        {"liveness_port", liveness_port},
                        {"version", version},
                        {"fingerprint", fingerprint},
                        {"tp", tp},
                        {"pp", pp},
                        {"world_size", world_size},
                        {"expert_parallel", expert_parallel},
                        {"tp_exact", tp_exact},
                        {"device", device},
                        {"max_batch_tokens", max_batch_tokens}}
      .dump();
}

Hello Hello::from_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail("a rank's hello is not JSON ({}): is every rank running shardlm?", e.what());
  }
  const int v = j.value("hello_version", 1);
  if (v != kVersion) {
    fail(
        "rank {} speaks handshake version {}, this one {}: run the same shardlm build on every "
        "node (it reported shardlm {})",
        j.value("rank", -1), v, kVersion, j.value("version", std::string("?")));
  }
  Hello h;
  try {
    h.rank = j.at("rank").get<int>();
    h.host = j.at("host").get<std::string>();
    h.address = j.at("address").get<std::string>();
    h.liveness_port = j.at("liveness_port").get<int>();
    h.version = j.at("version").get<std::string>();
    h.fingerprint = j.at("fingerprint").get<std::string>();
    h.tp = j.at("tp").get<int>();
    h.pp = j.at("pp").get<int>();
    h.world_size = j.at("world_size").get<int>();
    h.expert_parallel = j.value("expert_parallel", false);
    h.tp_exact = j.value("tp_exact", false);
    h.device = j.at("device").get<std::string>();
    h.max_batch_tokens = j.value("max_batch_tokens", 0);
  } catch (const nlohmann::json::exception& e) {
    fail("a rank's hello lacks a field or has one of the wrong type: {}", e.what());
  }
  return h;
}

std::string hello_difference(const std::string& a_text, const std::string& b_text) {
  auto a = nlohmann::json::parse(a_text), b = nlohmann::json::parse(b_text);
  for (auto* j : {&a, &b}) {
    if (!j->contains("hello_version")) (*j)["hello_version"] = 1;
    if (!j->contains("expert_parallel")) (*j)["expert_parallel"] = false;
    if (!j->contains("tp_exact")) (*j)["tp_exact"] = false;
  }
  if (a["version"] != b["version"]) {
    return fmt::format(
        "build: shardlm {} vs {}; run the same build (the same commit) on every node",
        a["version"].dump(), b["version"].dump());
  }
  if (a["fingerprint"] != b["fingerprint"]) {
    return "model fingerprint: " + fingerprint_difference(a.value("fingerprint", std::string()),
                                                          b.value("fingerprint", std::string()));
  }
  for (const char* key : {"hello_version", "tp", "pp", "world_size"}) {
    if (a[key] != b[key]) return fmt::format("{}: {} vs {}", key, a[key].dump(), b[key].dump());
  }
  if (a["expert_parallel"] != b["expert_parallel"]) {
    return fmt::format(
        "--enable-expert-parallel: {} vs {}; give the same expert-parallel flags on every node",
        a["expert_parallel"].dump(), b["expert_parallel"].dump());
  }
  if (a["tp_exact"] != b["tp_exact"]) {
    return fmt::format(
        "--tp-exact: {} vs {}; give --tp-exact on every node or on none (Megatron and exact "
        "tensor parallelism exchange different collectives)",
        a["tp_exact"].dump(), b["tp_exact"].dump());
  }
  const int master_tokens = a.value("max_batch_tokens", 0), tokens = b.value("max_batch_tokens", 0);
  if (master_tokens > 0 && tokens > 0 && tokens < master_tokens) {
    return fmt::format(
        "--max-num-batched-tokens: the master schedules steps of up to {} tokens, this rank takes "
        "at most {}; each rank's default follows its own device (8192 on a GPU, 512 on the CPU): "
        "give the same --max-num-batched-tokens on every node",
        master_tokens, tokens);
  }
  return {};
}

}  // namespace shardlm::parallel
