// Test support: reference logits dumped by scripts/gen_logit_refs.py (PyTorch/transformers) and
// how far a backend's logits are from them on the probe ids of every position.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace shardlm::testing {

nlohmann::json read_logit_ref(const std::string& path);

struct ProbeAgreement {
  double mean_err = 0, max_err = 0;  // |ours - reference| over every probe logit
  int positions = 0, top1_same = 0;  // positions whose argmax is the reference's top-1
};

// `logits_of(ids)` returns the prompt logits (ids.size() rows of vocab floats) for one case.
ProbeAgreement probe_agreement(
    const nlohmann::json& ref, size_t vocab,
    const std::function<std::vector<float>(const std::vector<int32_t>&)>& logits_of);

}  // namespace shardlm::testing
