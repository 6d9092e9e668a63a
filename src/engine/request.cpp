// Request state transitions.
#include "engine/request.h"

#include <cassert>
#include <chrono>

namespace shardlm {

const char* to_string(RequestStatus status) {
  switch (status) {
    case RequestStatus::kWaiting:
      return "waiting";
    case RequestStatus::kRunning:
      return "running";
    case RequestStatus::kPreempted:
      return "preempted";
    case RequestStatus::kFinished:
      return "finished";
    case RequestStatus::kAborted:
      return "aborted";
  }
  return "?";
}

const char* to_string(RequestFinishReason reason) {
  switch (reason) {
    case RequestFinishReason::kStop:
      return "stop";
    case RequestFinishReason::kLength:
      return "length";
    case RequestFinishReason::kAbort:
      return "abort";
  }
  return "?";
}

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Request::Request(int64_t id, std::vector<int32_t> prompt, const SamplingParams& params,
                 const Tokenizer* tokenizer)
    : id_(id),
      prompt_(std::move(prompt)),
      tokens_(prompt_),
      params_(params),
      sampling_seed_(shardlm::sampling_seed(params)),
      sampler_(params, sampling_seed_) {
  if (tokenizer) text_.emplace(*tokenizer, params);
  if (params.grammar) matcher_.emplace(params.grammar);
  times_.arrival = monotonic_seconds();
}

bool Request::needs_prompt_logits() const {
  return params_.prompt_logprobs && !prompt_logprobs_taken_ &&
         prompt_logprobs_.size() + 1 < prompt_.size();
}

void Request::add_prompt_logprobs(int32_t position, const float* logits, int32_t vocab) {
  const auto next = static_cast<size_t>(position) + 1;
  if (!params_.prompt_logprobs || next != prompt_logprobs_.size() + 1 || next >= prompt_.size()) {
    return;
  }
  prompt_logprobs_.push_back(token_logprobs(logits, vocab, prompt_[next], *params_.prompt_logprobs));
}

std::vector<TokenLogprobs> Request::take_prompt_logprobs() {
  prompt_logprobs_taken_ = true;
  return std::move(prompt_logprobs_);
}

bool Request::resume(const std::vector<int32_t>& output) {
  assert(status_ == RequestStatus::kWaiting && output_.empty() && n_computed_ == 0);
  for (int32_t token : output) {
    if (matcher_ && !matcher_->accept(token)) return false;
    output_.push_back(token);
    tokens_.push_back(token);
    if (text_) text_->push(token);
  }
  if (text_) text_->take_ready(false);  // already sent by the worker that generated them
  return true;
}

void Request::on_scheduled(double now) {
  assert(status_ == RequestStatus::kWaiting || status_ == RequestStatus::kPreempted);
  status_ = RequestStatus::kRunning;
  if (times_.first_scheduled == 0) times_.first_scheduled = now;
}

void Request::on_preempted() {
  assert(status_ == RequestStatus::kRunning && blocks_.empty());
  status_ = RequestStatus::kPreempted;
  n_computed_ = 0;
  ++n_preemptions_;
}

void Request::on_computed(int32_t n_tokens) {
  assert(status_ == RequestStatus::kRunning && n_computed_ + n_tokens <= this->n_tokens());
  n_computed_ += n_tokens;
}

void Request::append_token(int32_t token, double now) {
  assert(status_ == RequestStatus::kRunning && n_uncomputed() == 0);
  output_.push_back(token);
  tokens_.push_back(token);
  if (times_.first_token == 0) times_.first_token = now;
  times_.last_token = now;
}

void Request::finish(RequestFinishReason reason, double now) {
  assert(!is_finished());
  status_ =
      reason == RequestFinishReason::kAbort ? RequestStatus::kAborted : RequestStatus::kFinished;
  finish_reason_ = reason;
  times_.finished = now;
}

}  // namespace shardlm
