// RequestStream: a mutex, a condition variable and the merged pending output; StreamSignal and
// StreamSet: one wake-up for any of several streams.
#include "engine/request_stream.h"

#include <algorithm>

namespace shardlm {

uint64_t StreamSignal::sequence() const {
  std::lock_guard lock(mu_);
  return seq_;
}

void StreamSignal::notify() {
  {
    std::lock_guard lock(mu_);
    ++seq_;
  }
  cv_.notify_all();
}

bool StreamSignal::wait_past(uint64_t seen, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  ++waiters_;
  const bool changed = cv_.wait_until(lock, deadline, [&] { return seq_ != seen; });
  --waiters_;
  return changed;
}

int StreamSignal::waiters() const {
  std::lock_guard lock(mu_);
  return waiters_;
}

std::optional<RequestOutput> RequestStream::take_locked() {
  if (!pending_) return std::nullopt;
  std::optional<RequestOutput> out = std::move(pending_);
  pending_.reset();
  if (out->finished()) final_taken_ = true;
  return out;
}

std::optional<RequestOutput> RequestStream::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return pending_.has_value() || final_taken_; });
  return take_locked();
}

std::optional<RequestOutput> RequestStream::try_next() {
  std::lock_guard lock(mu_);
  return take_locked();
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
    n_prompt_tokens_ = std::max(n_prompt_tokens_, output.n_prompt_tokens);
    n_output_tokens_ = std::max(n_output_tokens_, output.n_output_tokens);
    if (pending_) {
      pending_->merge(std::move(output));
    } else {
      pending_ = std::move(output);
    }
  }
  cv_.notify_all();
  if (signal_) signal_->notify();  // after the output is stored: see StreamSignal
}

void RequestStream::fail(const std::string& error) {
  RequestOutput out;
  out.request_id = id_;
  out.finish_reason = RequestFinishReason::kAbort;
  {
    std::lock_guard lock(mu_);
    if (final_pushed_) return;
    error_ = error;
    out.n_prompt_tokens = n_prompt_tokens_;
    out.n_output_tokens = n_output_tokens_;
  }
  push(std::move(out));
}

bool StreamSet::all_done() const {
  for (const auto& s : streams_) {
    if (!s->done()) return false;
  }
  return true;
}

std::optional<std::pair<size_t, RequestOutput>> StreamSet::take_ready() {
  for (size_t k = 0; k < streams_.size(); ++k) {
    const size_t i = (cursor_ + k) % streams_.size();
    if (auto out = streams_[i]->try_next()) {
      cursor_ = i + 1;
      return std::make_pair(i, std::move(*out));
    }
  }
  return std::nullopt;
}

std::optional<std::pair<size_t, RequestOutput>> StreamSet::next(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const uint64_t seen = signal_->sequence();  // before the scan: a later push changes it
    if (auto out = take_ready()) return out;
    if (all_done()) return std::nullopt;
    if (!signal_->wait_past(seen, deadline)) return take_ready();
  }
}

}  // namespace shardlm
