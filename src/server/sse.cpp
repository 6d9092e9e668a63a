// SSE framing.
#include "server/sse.h"

namespace shardlm::server {

std::string sse_data(const std::string& payload) {
  return "data: " + payload + "\n\n";
}

std::string sse_done() {
  return "data: [DONE]\n\n";
}

}  // namespace shardlm::server
