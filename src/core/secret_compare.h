// Comparing a secret a client sent (an API key, a cluster token) with the expected one in time
// that depends only on the expected secret's length, so that timing does not reveal how many
// leading characters were right.
#pragma once

#include <string>

namespace shardlm {

inline bool secret_equals(const std::string& given, const std::string& expected) {
  unsigned diff = given.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

}  // namespace shardlm
