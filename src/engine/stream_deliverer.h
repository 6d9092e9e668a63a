// Feeds the request streams off the engine thread. Every step the engine hands over its outputs
// (and, when a step fails or the server stops, its failures) as one batch and goes on to schedule
// and launch the next step while this class's thread pushes them, each push a lock and a wake-up
// of an HTTP thread (at 256 streams about 1 ms a step that the GPU would otherwise wait for).
// Deliveries happen in the order they were handed over, batch after batch: a stream sees its
// outputs in order and a failure never overtakes the outputs queued before it. Inline
// (SHARDLM_DELIVER_THREAD=0, read by AsyncEngine) it pushes on the caller's thread, as before.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/output_processor.h"
#include "engine/request_stream.h"

namespace shardlm {

class StreamDeliverer {
 public:
  // One push (or fail) to one stream. The shared_ptr keeps the stream alive after the engine
  // forgets it (a finished request leaves AsyncEngine's map before its final output is pushed).
  struct Delivery {
    std::shared_ptr<RequestStream> stream;
    RequestOutput output;              // pushed, unless `error` is set
    std::optional<std::string> error{};  // set: stream->fail(*error) instead
  };
  using Batch = std::vector<Delivery>;

  // threaded: deliver on a thread of its own; otherwise hand_over() delivers before it returns.
  explicit StreamDeliverer(bool threaded);
  ~StreamDeliverer();  // delivers everything handed over, then joins the thread
  StreamDeliverer(const StreamDeliverer&) = delete;
  StreamDeliverer& operator=(const StreamDeliverer&) = delete;

  bool threaded() const { return thread_.joinable(); }
  // Queues `batch` behind every batch handed over before it and leaves it empty; its capacity
  // comes back through later calls, so a steady step loop allocates no queue memory.
  void hand_over(Batch& batch);
  // Returns once everything handed over so far has been delivered.
  void flush();

 private:
  void loop();
  bool take(Batch& work);  // waits for a batch; false when stopping with nothing left
  static void deliver(Batch& batch);

  std::mutex mu_;                    // guards queue_, busy_ and stopping_
  std::condition_variable work_cv_;  // a batch was queued, or stopping_
  std::condition_variable idle_cv_;  // the queue ran empty (flush)
  Batch queue_;                      // handed over, not yet taken by the thread
  bool busy_ = false;                // the thread is delivering a batch it took
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace shardlm
