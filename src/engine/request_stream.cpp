// RequestStream: a mutex, a condition variable and the merged pending output.
#include "engine/request_stream.h"

namespace shardlm {

std::optional<RequestOutput> RequestStream::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return pending_.has_value() || final_taken_; });
  if (!pending_) return std::nullopt;
  std::optional<RequestOutput> out = std::move(pending_);
  pending_.reset();
  if (out->finished()) final_taken_ = true;
  return out;
}

bool RequestStream::done() const {
  std::lock_guard lock(mu_);
  return final_taken_;
}

std::string RequestStream::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void RequestStream::push(RequestOutput output) {
  {
    std::lock_guard lock(mu_);
    if (final_pushed_) return;
    final_pushed_ = output.finished();
    if (pending_) {
      pending_->merge(std::move(output));
    } else {
      pending_ = std::move(output);
    }
  }
  cv_.notify_all();
}

void RequestStream::fail(const std::string& error) {
  RequestOutput out;
  out.request_id = id_;
  out.finish_reason = RequestFinishReason::kAbort;
  {
    std::lock_guard lock(mu_);
    if (final_pushed_) return;
    error_ = error;
  }
  push(std::move(out));
}

}  // namespace shardlm
