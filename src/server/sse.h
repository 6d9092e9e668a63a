// Server-sent events framing, as OpenAI streams use it: `data: <json>\n\n`, ending with
// `data: [DONE]\n\n`.
#pragma once

#include <string>

namespace shardlm::server {

std::string sse_data(const std::string& payload);
std::string sse_done();

}  // namespace shardlm::server
