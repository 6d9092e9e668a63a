// libFuzzer target for the server's request parsing: the input is an HTTP request body, parsed as
// a /v1/completions and a /v1/chat/completions request. Bad input must end in ApiError (a 400 for
// the client), never a crash, another exception or a hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/openai/api_error.h"
#include "server/openai/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  using namespace shardlm::server;
  try {
    const Json j = parse_body(body);
    try {
      parse_completion_request(j);
    } catch (const ApiError&) {
    }
    parse_chat_request(j);
  } catch (const ApiError&) {
  }
  return 0;
}
