// RankStats as JSON.
#include "parallel/rank_stats.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace shardlm::parallel {

std::string RankStats::to_json() const {
  return nlohmann::json{{"rank", rank},
                        {"steps", steps},
                        {"step_seconds", step_seconds},
                        {"comm_seconds", comm_seconds},
                        {"expert_rows", expert_rows}}
      .dump();
}

RankStats RankStats::from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    return {j.at("rank").get<int>(), j.at("steps").get<int64_t>(),
            j.at("step_seconds").get<double>(), j.at("comm_seconds").get<double>(),
            j.value("expert_rows", int64_t{0})};
  } catch (const std::exception& e) {
    fail("malformed rank stats '{}': {}", text, e.what());
  }
}

}  // namespace shardlm::parallel
