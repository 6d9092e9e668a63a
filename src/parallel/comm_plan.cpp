// CommPlan: the per-group choice between NCCL and the host-staged Gloo path.
#include "parallel/comm_plan.h"

#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace shardlm::parallel {

DistBackend parse_dist_backend(const std::string& text) {
  if (text.empty() || text == "auto") return DistBackend::kAuto;
  if (text == "nccl") return DistBackend::kNccl;
  if (text == "gloo") return DistBackend::kGloo;
  fail("--dist-backend '{}' is not a backend: use auto, nccl or gloo", text);
}

namespace {

// "" when every rank has a GPU of its own; otherwise why not, naming the ranks.
std::string why_not_nccl(const std::vector<int>& ranks, const std::vector<RankDevice>& devices) {
  std::map<std::string, int> owner;  // device -> first rank on it
  for (int r : ranks) {
    const RankDevice& d = devices.at(static_cast<size_t>(r));
    if (d.device.empty()) return fmt::format("rank {} on {} runs on the CPU", r, d.host);
    const auto [it, fresh] = owner.emplace(d.device, r);
    if (!fresh) {
      return fmt::format("ranks {} and {} on {} share the GPU {} (NCCL needs one GPU per rank)",
                         it->second, r, d.host, d.device);
    }
  }
  return "";
}

}  // namespace

bool choose_nccl(DistBackend backend, const std::vector<int>& ranks,
                 const std::vector<RankDevice>& devices, const std::string& what,
                 bool nccl_available) {
  if (backend == DistBackend::kGloo) return false;
  const std::string why = why_not_nccl(ranks, devices);
  if (backend == DistBackend::kAuto) return nccl_available && why.empty();
  if (!nccl_available) {
    fail(
        "--dist-backend nccl: this shardlm was built without NCCL; rebuild with the CUDA toolkit "
        "and NCCL (libnccl-dev), or use --dist-backend auto");
  }
  if (!why.empty()) {
    fail(
        "--dist-backend nccl: {} cannot use NCCL: {}; give every rank its own GPU (one rank per "
        "GPU: --nproc-per-node at most the GPUs of a node, CUDA_VISIBLE_DEVICES) or use "
        "--dist-backend auto or gloo (the host-staged path)",
        what, why);
  }
  return true;
}

CommPlan plan_comms(const ParallelConfig& cfg, const std::vector<RankDevice>& devices,
                    DistBackend backend, bool nccl_available) {
  if (static_cast<int>(devices.size()) != cfg.world_size()) {
    fail("internal: {} rank devices for a group of {}", devices.size(), cfg.world_size());
  }
  CommPlan plan;
  plan.tp = cfg.tp;
  plan.pp = cfg.pp;
  for (int s = 0; s < cfg.pp; ++s) {
    bool nccl = false;
    if (cfg.tp > 1) {
      nccl = choose_nccl(backend, tp_group(cfg, s * cfg.tp), devices,
                         fmt::format("the TP group of stage {}", s), nccl_available);
    }
    plan.tp_nccl.push_back(nccl);
  }
  for (int s = 0; s + 1 < cfg.pp; ++s) {
    for (int t = 0; t < cfg.tp; ++t) {
      const int from = s * cfg.tp + t, to = from + cfg.tp;
      plan.link_nccl.push_back(choose_nccl(
          backend, {from, to}, devices,
          fmt::format("the pipeline link from rank {} to rank {}", from, to), nccl_available));
    }
  }
  return plan;
}

bool CommPlan::any_nccl() const {
  for (bool b : tp_nccl) {
    if (b) return true;
  }
  for (bool b : link_nccl) {
    if (b) return true;
  }
  return false;
}

namespace {
std::string list(const std::vector<bool>& v) {
  std::string out;
  for (bool b : v) out += fmt::format("{}{}", out.empty() ? "" : ", ", b ? "nccl" : "gloo");
  return out.empty() ? "none" : out;
}
}  // namespace

std::string CommPlan::describe() const {
  return fmt::format("TP groups by stage: {}; pipeline links: {} (gloo = host-staged)",
                     tp > 1 ? list(tp_nccl) : "none", list(link_nccl));
}

std::string CommPlan::to_json() const {
  return nlohmann::json{
      {"version", kVersion}, {"tp", tp}, {"pp", pp}, {"tp_nccl", tp_nccl}, {"link_nccl", link_nccl}}
      .dump();
}

CommPlan CommPlan::from_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("the master's communicator plan is not JSON");
  if (j.value("version", 0) != kVersion) {
    fail(
        "the master's communicator plan is version {}, this rank reads {}: run the same shardlm "
        "build on every node",
        j.value("version", 0), kVersion);
  }
  CommPlan p;
  try {
    p.tp = j.value("tp", 0);
    p.pp = j.value("pp", 0);
    p.tp_nccl = j.value("tp_nccl", std::vector<bool>{});
    p.link_nccl = j.value("link_nccl", std::vector<bool>{});
  } catch (const nlohmann::json::exception&) {
    fail("the master's communicator plan has a field of the wrong type: {}", text);
  }
  if (p.tp < 1 || p.pp < 1 || p.tp_nccl.size() != static_cast<size_t>(p.pp) ||
      p.link_nccl.size() != static_cast<size_t>((p.pp - 1) * p.tp)) {
    fail("the master's communicator plan does not fit its own layout: {}", text);
  }
  return p;
}

}  // namespace shardlm::parallel
