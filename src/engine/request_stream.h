// The consumer's end of one request in the async engine: the engine thread pushes outputs, a
// server thread waits for them. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "engine/output_processor.h"

namespace shardlm {

class RequestStream {
 public:
  explicit RequestStream(int64_t id) : id_(id) {}

  int64_t id() const { return id_; }
  // Everything pushed since the last call, merged; nullopt if nothing came within the timeout or
  // the final output was already taken.
  std::optional<RequestOutput> next(std::chrono::milliseconds timeout);
  // True once the final output has been taken by next().
  bool done() const;
  // Why the engine failed the request (its final output then has finish reason abort).
  std::string error() const;

  // Engine side.
  void push(RequestOutput output);
  void fail(const std::string& error);

 private:
  const int64_t id_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<RequestOutput> pending_;
  bool final_pushed_ = false;
  bool final_taken_ = false;
  std::string error_;
};

}  // namespace shardlm
