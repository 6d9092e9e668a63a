// StreamDeliverer: one FIFO of deliveries, swapped whole between the engine and the thread.
#include "engine/stream_deliverer.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <iterator>

namespace shardlm {

StreamDeliverer::StreamDeliverer(bool threaded) {
  if (threaded) thread_ = std::thread([this] { loop(); });
}

StreamDeliverer::~StreamDeliverer() {
  if (!threaded()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  thread_.join();  // the thread leaves only once the queue is empty
}

void StreamDeliverer::hand_over(Batch& batch) {
  if (batch.empty()) return;
  if (!threaded()) {
    deliver(batch);
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (queue_.empty()) {
      queue_.swap(batch);  // batch gets the queue's spare capacity
    } else {
      queue_.insert(queue_.end(), std::make_move_iterator(batch.begin()),
                    std::make_move_iterator(batch.end()));
    }
  }
  batch.clear();
  work_cv_.notify_one();
}

void StreamDeliverer::flush() {
  if (!threaded()) return;
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

bool StreamDeliverer::take(Batch& work) {
  std::unique_lock lock(mu_);
  busy_ = false;
  if (queue_.empty()) idle_cv_.notify_all();
  work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  if (queue_.empty()) return false;
  work.swap(queue_);  // the queue gets work's emptied vector, capacity and all
  busy_ = true;
  return true;
}

void StreamDeliverer::loop() {
  Batch work;
  while (take(work)) deliver(work);
}

// Leaves `batch` empty; the streams it held may be destroyed here, outside any lock of ours.
void StreamDeliverer::deliver(Batch& batch) {
  for (Delivery& d : batch) {
    try {
      if (d.error) {
        d.stream->fail(*d.error);
      } else {
        d.stream->push(std::move(d.output));
      }
    } catch (const std::exception& e) {  // allocation in a merge: lose one output, not the thread
      spdlog::error("delivering an output to request {} failed: {}", d.stream->id(), e.what());
    }
  }
  batch.clear();
}

}  // namespace shardlm
