// One request relayed to a worker, on its own thread: the worker's status, then its body as it
// arrives (chunk by chunk, never buffered whole), then its end or the failure that cut it. The
// frontend's HTTP thread takes the pieces with next(); cancel() (or dropping the last reference)
// makes the relay stop at the worker's next chunk and close the connection, which aborts the
// request there.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <httplib.h>

namespace shardlm::fleet {

struct UpstreamPiece {
  enum class Kind { kHead, kData, kEnd, kFailed };
  Kind kind = Kind::kData;
  int status = 0;            // kHead
  std::string content_type;  // kHead
  std::string data;          // kData: body bytes; kFailed: what went wrong
  bool refused = false;      // kFailed: the connection was never made
};

class UpstreamCall {
 public:
  // POST `body` (or GET when method is "GET") to base_url + path.
  static std::shared_ptr<UpstreamCall> start(const std::string& base_url, const std::string& method,
                                             const std::string& path, const std::string& body,
                                             const httplib::Headers& headers);
  ~UpstreamCall();

  // The next piece, waiting up to `timeout`; nullopt when none came in time.
  std::optional<UpstreamPiece> next(std::chrono::milliseconds timeout);
  void cancel();

  struct State;  // shared with the relay thread, which may outlive the call

 private:
  explicit UpstreamCall(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace shardlm::fleet
