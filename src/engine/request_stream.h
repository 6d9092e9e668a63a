// The consumer's end of one request in the async engine: the engine pushes outputs (from its
// StreamDeliverer's thread, in step order), a server thread waits for them. Delivery is pushed,
// never polled: every push wakes the stream's own waiter and, when the stream belongs to a
// StreamSet, whoever waits on the set, so a thread that serves several requests (n > 1, a batch of
// prompts) wakes for whichever is ready. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/output_processor.h"

namespace shardlm {

// A sequence number that every push to any of a set's streams bumps, with a condition variable to
// wait for the next bump. Reading the number before looking at the streams, then waiting for it to
// change, never misses a push (a push stores its output before it bumps the number).
class StreamSignal {
 public:
  uint64_t sequence() const;
  void notify();
  // Waits until the sequence differs from `seen` or the deadline passes; true when it changed.
  bool wait_past(uint64_t seen, std::chrono::steady_clock::time_point deadline);
  // Threads inside wait_past now (tests use it to push only once a consumer is blocked).
  int waiters() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ = 0;
  int waiters_ = 0;
};

class RequestStream {
 public:
  // id: the request's id, the same in the engine, its outputs and the HTTP response
  // (AsyncEngine::submit). signal: the set's signal, or null for a stream waited on alone.
  explicit RequestStream(int64_t id, std::shared_ptr<StreamSignal> signal = nullptr)
      : id_(id), signal_(std::move(signal)) {}

  int64_t id() const { return id_; }
  // Everything pushed since the last call, merged; nullopt if nothing came within the timeout or
  // the final output was already taken.
  std::optional<RequestOutput> next(std::chrono::milliseconds timeout);
  // next() without waiting.
  std::optional<RequestOutput> try_next();
  // True once the final output has been taken by next().
  bool done() const;
  // Why the engine failed the request (its final output then has finish reason abort).
  std::string error() const;

  // Engine side.
  void push(RequestOutput output);
  // Ends the stream with finish reason abort; its final output carries the token totals the
  // pushes before it reported, so usage counts the tokens already sent.
  void fail(const std::string& error);

 private:
  std::optional<RequestOutput> take_locked();

  const int64_t id_;
  const std::shared_ptr<StreamSignal> signal_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<RequestOutput> pending_;
  bool final_pushed_ = false;
  bool final_taken_ = false;
  std::string error_;
  int32_t n_prompt_tokens_ = 0;  // the totals of the latest push
  int32_t n_output_tokens_ = 0;
};

// Several streams read by one thread: next() returns the output of whichever stream has one,
// taking ready streams in turn (round robin) so that none starves, and waits on the shared signal
// when none is ready. A ready stream is never held behind a slow one. One consumer thread.
class StreamSet {
 public:
  StreamSet() : signal_(std::make_shared<StreamSignal>()) {}

  // The signal to give each stream of the set at its creation (AsyncEngine::submit).
  const std::shared_ptr<StreamSignal>& signal() const { return signal_; }
  void add(std::shared_ptr<RequestStream> stream) { streams_.push_back(std::move(stream)); }
  size_t size() const { return streams_.size(); }
  const RequestStream& operator[](size_t i) const { return *streams_[i]; }
  bool all_done() const;
  // (stream index, output) of the next ready stream; waits up to `timeout` when none is ready;
  // nullopt on timeout or when every stream is done.
  std::optional<std::pair<size_t, RequestOutput>> next(std::chrono::milliseconds timeout);

 private:
  std::optional<std::pair<size_t, RequestOutput>> take_ready();

  std::shared_ptr<StreamSignal> signal_;
  std::vector<std::shared_ptr<RequestStream>> streams_;
  size_t cursor_ = 0;  // where the next round-robin scan starts
};

}  // namespace shardlm
