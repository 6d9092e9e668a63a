// OutputProcessor: per-step outputs from the step's token events and finished requests.
#include "engine/output_processor.h"

#include <algorithm>

namespace shardlm {

void RequestOutput::merge(RequestOutput&& later) {
  text += later.text;
  token_ids.insert(token_ids.end(), later.token_ids.begin(), later.token_ids.end());
  for (auto& l : later.logprobs) logprobs.push_back(std::move(l));
  for (auto& l : later.prompt_logprobs) prompt_logprobs.push_back(std::move(l));
  if (later.finish_reason) finish_reason = later.finish_reason;
  n_prompt_tokens = std::max(n_prompt_tokens, later.n_prompt_tokens);
  n_output_tokens = std::max(n_output_tokens, later.n_output_tokens);
}

void OutputProcessor::add(int64_t request_id, int32_t n_prompt_tokens, int32_t n_resumed) {
  RequestOutput p;
  p.request_id = request_id;
  p.n_prompt_tokens = n_prompt_tokens;
  p.n_output_tokens = n_resumed;
  pending_.emplace(request_id, std::move(p));
}

RequestOutput OutputProcessor::take(RequestOutput& pending,
                                    std::optional<RequestFinishReason> reason) {
  RequestOutput out = std::move(pending);
  out.finish_reason = reason;
  pending = RequestOutput{};
  pending.request_id = out.request_id;
  pending.n_prompt_tokens = out.n_prompt_tokens;
  pending.n_output_tokens = out.n_output_tokens;
  return out;
}

std::vector<RequestOutput> OutputProcessor::process(const StepOutput& step) {
  std::vector<int64_t> touched;
  for (const TokenEvent& e : step.tokens) {
    const auto it = pending_.find(e.request_id);
    if (it == pending_.end()) continue;
    RequestOutput& p = it->second;
    p.token_ids.push_back(e.token);
    if (e.logprobs) p.logprobs.push_back(*e.logprobs);
    p.prompt_logprobs.insert(p.prompt_logprobs.end(), e.prompt_logprobs.begin(),
                             e.prompt_logprobs.end());
    p.text += e.text;
    ++p.n_output_tokens;
    touched.push_back(e.request_id);
  }
  std::unordered_map<int64_t, RequestFinishReason> ended;
  for (const FinishedRequest& f : step.finished) {
    const auto it = pending_.find(f.id);
    if (it == pending_.end()) continue;
    it->second.text += f.final_text;
    ended[f.id] = f.reason;
  }
  std::vector<RequestOutput> outputs;
  for (int64_t id : touched) {
    if (!ended.count(id)) outputs.push_back(take(pending_.at(id), std::nullopt));
  }
  for (const auto& [id, reason] : ended) {
    const auto it = pending_.find(id);
    outputs.push_back(take(it->second, reason));
    pending_.erase(it);
  }
  return outputs;
}

}  // namespace shardlm
