// OutputText (stop strings over streamed text) and OutputProcessor (per-step outputs).
#include "engine/output_processor.h"

#include <algorithm>

namespace shardlm {

void RequestOutput::merge(RequestOutput&& later) {
  text += later.text;
  token_ids.insert(token_ids.end(), later.token_ids.begin(), later.token_ids.end());
  for (auto& l : later.logprobs) logprobs.push_back(std::move(l));
  if (later.finish_reason) finish_reason = later.finish_reason;
  n_prompt_tokens = std::max(n_prompt_tokens, later.n_prompt_tokens);
  n_output_tokens = std::max(n_output_tokens, later.n_output_tokens);
}

OutputText::OutputText(const Tokenizer& tokenizer, const SamplingParams& params)
    : detok_(tokenizer, params.skip_special_tokens),
      stop_(params.stop),
      include_stop_(params.include_stop_str_in_output) {
  for (const std::string& s : stop_) hold_ = std::max(hold_, s.size() - 1);
}

bool OutputText::push(int32_t token) {
  if (stopped_) return true;
  const size_t old_size = text_.size();
  text_ += detok_.push(token);
  if (stop_.empty() || text_.size() == old_size) return false;
  // A match must end in the new text, so it starts at most hold_ bytes before it.
  const size_t from = old_size > hold_ ? old_size - hold_ : 0;
  size_t best = std::string::npos, best_len = 0;
  for (const std::string& s : stop_) {
    const size_t pos = text_.find(s, from);
    if (pos < best) best = pos, best_len = s.size();
  }
  if (best == std::string::npos) return false;
  text_.resize(std::max(sent_, include_stop_ ? best + best_len : best));
  stopped_ = true;
  return true;
}

std::string OutputText::take_ready(bool final) {
  if (final && !stopped_) text_ += detok_.flush();
  size_t end = text_.size();
  if (!final && !stopped_) {
    end = text_.size() > hold_ ? text_.size() - hold_ : 0;
    // Never split a UTF-8 character.
    while (end > sent_ && end < text_.size() && (static_cast<uint8_t>(text_[end]) & 0xC0) == 0x80) {
      --end;
    }
  }
  if (end <= sent_) return {};
  std::string out = text_.substr(sent_, end - sent_);
  sent_ = end;
  return out;
}

OutputProcessor::OutputProcessor(Engine& engine, const Tokenizer& tokenizer)
    : engine_(engine), tokenizer_(tokenizer) {}

void OutputProcessor::add(int64_t request_id, int32_t n_prompt_tokens,
                          const SamplingParams& params) {
  State s{OutputText(tokenizer_, params), {}};
  s.pending.request_id = request_id;
  s.pending.n_prompt_tokens = n_prompt_tokens;
  states_.emplace(request_id, std::move(s));
}

void OutputProcessor::on_token(const TokenEvent& e, std::vector<int64_t>& touched) {
  const auto it = states_.find(e.request_id);
  if (it == states_.end()) return;  // ended by a stop string earlier
  State& s = it->second;
  RequestOutput& p = s.pending;
  p.token_ids.push_back(e.token);
  if (e.logprobs) p.logprobs.push_back(*e.logprobs);
  ++p.n_output_tokens;
  touched.push_back(e.request_id);
  if (s.text.push(e.token)) engine_.finish_request(e.request_id, RequestFinishReason::kStop);
}

RequestOutput OutputProcessor::take(State& s, int64_t id,
                                    std::optional<RequestFinishReason> reason) {
  RequestOutput out = std::move(s.pending);
  out.text = s.text.take_ready(reason.has_value());
  out.finish_reason = reason;
  s.pending = RequestOutput{};
  s.pending.request_id = id;
  s.pending.n_prompt_tokens = out.n_prompt_tokens;
  s.pending.n_output_tokens = out.n_output_tokens;
  return out;
}

std::vector<RequestOutput> OutputProcessor::process(const StepOutput& step) {
  std::vector<int64_t> touched;
  for (const TokenEvent& e : step.tokens) on_token(e, touched);
  std::unordered_map<int64_t, RequestFinishReason> ended;
  for (const FinishedRequest& f : step.finished) ended[f.id] = f.reason;
  // A stop string ends the request in the engine now; report it finished in this step.
  for (int64_t id : touched) {
    const Request* r = engine_.find(id);
    if (r == nullptr && !ended.count(id)) ended[id] = RequestFinishReason::kStop;
  }
  std::vector<RequestOutput> outputs;
  for (int64_t id : touched) {
    if (ended.count(id)) continue;
    outputs.push_back(take(states_.at(id), id, std::nullopt));
  }
  for (const auto& [id, reason] : ended) {
    const auto it = states_.find(id);
    if (it == states_.end()) continue;
    outputs.push_back(take(it->second, id, reason));
    states_.erase(it);
  }
  return outputs;
}

}  // namespace shardlm
