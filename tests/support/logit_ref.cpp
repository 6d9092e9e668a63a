// Reading reference logits and comparing a backend's probe logits with them.
#include "logit_ref.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

namespace shardlm::testing {

nlohmann::json read_logit_ref(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing reference " + path);
  return nlohmann::json::parse(in);
}

ProbeAgreement probe_agreement(
    const nlohmann::json& ref, size_t vocab,
    const std::function<std::vector<float>(const std::vector<int32_t>&)>& logits_of) {
  const auto probe = ref["probe_ids"].get<std::vector<int32_t>>();
  ProbeAgreement a;
  double sum = 0;
  int64_t n = 0;
  for (const auto& c : ref["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    const auto logits = logits_of(ids);
    for (size_t t = 0; t < ids.size(); ++t, ++a.positions) {
      const float* row = logits.data() + t * vocab;
      const auto& pos = c["positions"][t];
      a.top1_same += (std::max_element(row, row + vocab) - row) == pos["top_ids"][0].get<int>();
      for (size_t k = 0; k < probe.size(); ++k) {
        const double err = std::abs(row[probe[k]] - pos["probe_logits"][k].get<double>());
        sum += err, a.max_err = std::max(a.max_err, err), ++n;
      }
    }
  }
  a.mean_err = n > 0 ? sum / static_cast<double>(n) : 0;
  return a;
}

}  // namespace shardlm::testing
