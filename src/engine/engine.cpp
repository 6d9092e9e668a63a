// Engine: request bookkeeping and the schedule -> run -> postprocess step.
#include "engine/engine.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <functional>
#include <string_view>

#include "core/error.h"
#include "engine/device_sampling.h"

namespace shardlm {

namespace {

// SHARDLM_GRAMMAR_OVERLAP=0 fills the token masks before the forward is launched instead of while
// it runs (to measure what the overlap gains).
bool overlap_masks_from_env() {
  const char* v = std::getenv("SHARDLM_GRAMMAR_OVERLAP");
  return !(v && std::string_view(v) == "0");
}

}  // namespace

void EngineConfig::validate() const {
  const SchedulerConfig& s = scheduler;
  if (s.max_num_seqs < 1) fail("max_num_seqs is {}; it must be at least 1", s.max_num_seqs);
  if (s.max_num_batched_tokens < 1) {
    fail("max_num_batched_tokens is {}; it must be at least 1", s.max_num_batched_tokens);
  }
  if (s.max_model_len < 2) fail("max_model_len is {}; it must be at least 2", s.max_model_len);
  if (blocks.block_size < 1) fail("block_size is {}; it must be at least 1", blocks.block_size);
  // A request alone must always fit, or preemption could never make room for it.
  if (blocks.n_blocks * blocks.block_size < s.max_model_len) {
    fail(
        "the KV cache holds {} tokens but max_model_len is {}; give the cache more memory or "
        "lower max_model_len",
        blocks.n_blocks * blocks.block_size, s.max_model_len);
  }
}

Engine::Engine(const EngineConfig& config, ModelRunner& runner, const Tokenizer* tokenizer)
    : config_(config),
      runner_(runner),
      tokenizer_(tokenizer),
      blocks_((config.validate(), config.blocks)),
      scheduler_(config.scheduler, blocks_),
      logits_(static_cast<size_t>(config.scheduler.max_num_seqs) * runner.vocab_size()),
      overlap_masks_(overlap_masks_from_env()) {
  scheduler_.set_virtual_engines(std::max(1, runner.max_in_flight()));
}

RequestLimits Engine::limits() const {
  RequestLimits l;
  l.max_model_len = config_.scheduler.max_model_len;
  l.vocab_size = runner_.vocab_size();
  l.stop_strings = tokenizer_ != nullptr;
  return l;
}

int64_t Engine::add_request(std::vector<int32_t> prompt, const SamplingParams& params) {
  validate_request(limits(), prompt, params);
  const int64_t id = new_request_ids();
  add_validated_request(id, std::move(prompt), params);
  return id;
}

void Engine::add_validated_request(int64_t id, std::vector<int32_t> prompt,
                                   const SamplingParams& params,
                                   const std::vector<int32_t>& resumed) {
  assert(!prompt.empty() && static_cast<int>(prompt.size()) < config_.scheduler.max_model_len);
  assert(id < next_id_.load() && !requests_.count(id));  // an id from new_request_ids, unused
  auto request = std::make_unique<Request>(id, std::move(prompt), params, tokenizer_);
  [[maybe_unused]] const bool resumed_ok = request->resume(resumed);
  assert(resumed_ok);  // the grammar accepted them at submission (validate_resumed_output)
  scheduler_.add(request.get());
  requests_.emplace(id, std::move(request));
}

bool Engine::abort_request(int64_t id) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  if (is_in_flight(id)) {  // ended when its batch comes back (its K/V slots are in use till then)
    if (std::find(aborted_in_flight_.begin(), aborted_in_flight_.end(), id) ==
        aborted_in_flight_.end()) {
      aborted_in_flight_.push_back(id);
    }
    return true;
  }
  Request& r = *it->second;
  scheduler_.remove(&r);
  r.finish(RequestFinishReason::kAbort, monotonic_seconds());
  ended_.push_back(summary(r));
  requests_.erase(it);
  return true;
}

const Request* Engine::find(int64_t id) const {
  const auto it = requests_.find(id);
  return it == requests_.end() ? nullptr : it->second.get();
}

StepOutput Engine::step() {
  profile_.begin_step();
  if (scheduler_.virtual_engines() > 1) return step_pipelined();
  StepOutput out;
  out.finished = std::move(ended_);
  ended_.clear();
  const SchedulerOutput batch = schedule_step(0, out);
  if (batch.empty()) return out;
  run(batch);
  postprocess(batch, out);
  profile_.mark(StepProfile::kPostprocess);
  return out;
}

SchedulerOutput Engine::schedule_step(int virtual_engine, StepOutput& out) {
  SchedulerOutput batch = scheduler_.schedule(virtual_engine);
  for (const Request* r : batch.preempted) out.preempted.push_back(r->id());
  for (const ScheduledRequest& s : batch.scheduled) {
    const Request& r = *s.request;
    out.scheduled.emplace_back(r.id(), s.n_tokens);
    const bool decode = r.n_output() > 0 && r.n_uncomputed() == 1;
    if (!decode) out.n_prompt_tokens += s.n_tokens;
  }
  out.n_tokens = batch.n_tokens;
  profile_.describe_step(out.n_prompt_tokens > 0, out.n_tokens,
                         static_cast<int>(batch.scheduled.size()));
  profile_.mark(StepProfile::kSchedule);
  return batch;
}

StepOutput Engine::step_pipelined() {
  StepOutput out;
  out.finished = std::move(ended_);
  ended_.clear();
  const int v = next_virtual_;
  next_virtual_ = (next_virtual_ + 1) % scheduler_.virtual_engines();
  try {
    // Batches go out round robin, so v's batch in flight, if any, is the oldest.
    if (!in_flight_.empty() && in_flight_.front().virtual_engine == v) collect_oldest(out);
    SchedulerOutput batch = schedule_step(v, out);
    if (batch.empty()) return out;
    const ForwardBatch fb = build_batch(batch);
    index_logit_rows(fb);
    profile_.mark(StepProfile::kPrepare);
    runner_.submit(fb);
    profile_.mark(StepProfile::kForward);
    in_flight_.push_back({v, std::move(batch), logit_rows_});
  } catch (...) {
    // The runner failed: what was in flight is lost (the caller ends those requests).
    in_flight_.clear();
    aborted_in_flight_.clear();
    throw;
  }
  return out;
}

void Engine::collect_oldest(StepOutput& out) {
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  logit_rows_ = std::move(f.logit_rows);
  const size_t need = (logit_rows_.empty() ? 0 : logit_rows_.back()) * runner_.vocab_size();
  if (need > logits_.size()) logits_.resize(need);
  runner_.collect(logits_.data());
  profile_.mark(StepProfile::kForward);
  device_step_ = false;
  postprocess(f.batch, out);
  profile_.mark(StepProfile::kPostprocess);
  std::vector<int64_t> aborted;
  aborted.swap(aborted_in_flight_);
  for (int64_t id : aborted) {
    if (is_in_flight(id)) {
      aborted_in_flight_.push_back(id);
    } else {
      abort_request(id);  // false when it finished in this batch
    }
  }
  for (FinishedRequest& f : ended_) out.finished.push_back(std::move(f));
  ended_.clear();
}

bool Engine::is_in_flight(int64_t id) const {
  for (const InFlight& f : in_flight_) {
    for (const ScheduledRequest& s : f.batch.scheduled) {
      if (s.request->id() == id) return true;
    }
  }
  return false;
}

ForwardBatch Engine::build_batch(const SchedulerOutput& batch) const {
  ForwardBatch fb;
  for (const ScheduledRequest& s : batch.scheduled) {
    const Request& r = *s.request;
    const auto first = r.tokens().begin() + r.n_computed();
    const bool all_logits = r.needs_prompt_logits() && r.n_computed() < r.n_prompt();
    fb.add_sequence({first, first + s.n_tokens}, r.n_computed(), r.block_table().blocks,
                    config_.blocks.block_size, all_logits);
  }
  return fb;
}

void Engine::run(const SchedulerOutput& batch) {
  device_step_ = samples_on_device(batch);
  if (!device_step_) {
    const ForwardBatch fb = build_batch(batch);
    index_logit_rows(fb);
    profile_.mark(StepProfile::kPrepare);
    runner_.execute(fb, logits_.data());
    profile_.mark(StepProfile::kForward);
    return;
  }
  build_row_sampling(batch);
  sampled_.assign(batch.scheduled.size(), 0);
  // The masks are filled while the device runs the forward (or before it is launched, for
  // comparison: SHARDLM_GRAMMAR_OVERLAP=0).
  std::function<void()> complete_rows;
  if (!constrained_.empty() && overlap_masks_) complete_rows = [this] { fill_token_masks(); };
  if (!constrained_.empty() && !overlap_masks_) fill_token_masks();
  const ForwardBatch fb = build_batch(batch);
  profile_.mark(StepProfile::kPrepare);
  runner_.execute_sampled(fb, rows_.data(), sampled_.data(), complete_rows);
  profile_.mark(StepProfile::kForward);
}

void Engine::index_logit_rows(const ForwardBatch& fb) {
  logit_rows_.assign(1, 0);
  size_t row = 0;
  for (const ForwardBatch::Seq& s : fb.seqs) {
    while (row < fb.logit_rows.size() && fb.logit_rows[row] < s.first_row + s.n_tokens) ++row;
    logit_rows_.push_back(row);
  }
  // Every position's logits (prompt_logprobs) can outgrow the one row per request sized at start.
  const size_t need = fb.logit_rows.size() * static_cast<size_t>(runner_.vocab_size());
  if (need > logits_.size()) logits_.resize(need);
}

bool Engine::samples_on_device(const SchedulerOutput& batch) const {
  if (!runner_.samples_on_device()) return false;
  return std::all_of(batch.scheduled.begin(), batch.scheduled.end(), [](const ScheduledRequest& s) {
    return device_samplable(s.request->params());
  });
}

void Engine::build_row_sampling(const SchedulerOutput& batch) {
  rows_.clear();
  penalty_tokens_.clear();
  constrained_.clear();
  std::vector<size_t> first_penalty;
  for (const ScheduledRequest& s : batch.scheduled) {
    Request& r = *s.request;
    first_penalty.push_back(penalty_tokens_.size());
    // A prefill chunk that leaves tokens to compute samples nothing: a cheap greedy row.
    if (r.n_computed() + s.n_tokens < r.n_tokens()) {
      rows_.emplace_back().temperature = 0.f;
      continue;
    }
    if (r.grammar()) constrained_.emplace_back(rows_.size(), &r);
    rows_.push_back(row_sampling(r.params(), r.sampling_seed(), uint64_t(r.n_output())));
    append_penalty_tokens(r.params(), r.prompt(), r.output(), penalty_tokens_);
  }
  for (size_t i = 0; i < rows_.size(); ++i) {  // pointers once the list has stopped growing
    const size_t end = i + 1 < rows_.size() ? first_penalty[i + 1] : penalty_tokens_.size();
    rows_[i].penalties = penalty_tokens_.data() + first_penalty[i];
    rows_[i].n_penalties = static_cast<int32_t>(end - first_penalty[i]);
  }
}

void Engine::fill_token_masks() {
  step_masks_.clear();
  mask_spans_.clear();
  for (const auto& [row, request] : constrained_) {
    // The grammar's mask (UTF-8 guard included) for the token this step samples.
    if (!request->grammar()->fill_mask(token_mask_)) continue;
    mask_spans_.push_back({row, step_masks_.size(), token_mask_.size()});
    step_masks_.insert(step_masks_.end(), token_mask_.begin(), token_mask_.end());
  }
  for (const MaskSpan& m : mask_spans_) {  // pointers once the list has stopped growing
    rows_[m.row].allowed =
        TokenBitmask{step_masks_.data() + m.first, static_cast<int32_t>(m.words)};
  }
}

void Engine::postprocess(const SchedulerOutput& batch, StepOutput& out) {
  scheduler_.on_step_done(batch);
  const size_t vocab = static_cast<size_t>(runner_.vocab_size());
  for (size_t i = 0; i < batch.scheduled.size(); ++i) {
    Request& r = *batch.scheduled[i].request;
    const auto& gone = aborted_in_flight_;
    if (std::find(gone.begin(), gone.end(), r.id()) != gone.end()) continue;  // aborted meanwhile
    if (!device_step_) gather_prompt_logprobs(r, i);
    // A prefill chunk that leaves tokens to compute produces no token yet.
    if (r.n_uncomputed() != 0) continue;
    if (device_step_) {
      if (GrammarMatcher* grammar = r.grammar()) grammar->accept(sampled_[i]);
      emit(r, TokenEvent{r.id(), sampled_[i], std::nullopt}, out);
    } else {
      sample(r, logits_.data() + (logit_rows_[i + 1] - 1) * vocab, out);
    }
  }
}

void Engine::gather_prompt_logprobs(Request& r, size_t i) {
  if (!r.needs_prompt_logits()) return;
  const size_t rows = logit_rows_[i + 1] - logit_rows_[i];  // the chunk's last positions
  const int32_t vocab = runner_.vocab_size();
  // n_computed counts this chunk already.
  const int32_t first_position = r.n_computed() - static_cast<int32_t>(rows);
  for (size_t k = 0; k < rows; ++k) {
    const float* row = logits_.data() + (logit_rows_[i] + k) * static_cast<size_t>(vocab);
    r.add_prompt_logprobs(first_position + static_cast<int32_t>(k), row, vocab);
  }
}

void Engine::sample(Request& r, float* logits, StepOutput& out) {
  const int32_t vocab = runner_.vocab_size();
  const auto& want_logprobs = r.params().logprobs;
  // The sampler works in place on the row: keep the raw row when log-probabilities are wanted.
  if (want_logprobs) raw_row_.assign(logits, logits + vocab);
  for (const auto& [id, bias] : r.params().logit_bias) logits[id] += bias;
  GrammarMatcher* grammar = r.grammar();
  if (grammar && grammar->fill_mask(token_mask_)) apply_token_mask(token_mask_, logits, vocab);
  const int32_t token = r.sampler().sample(logits, vocab, r.prompt(), r.output());
  if (grammar) grammar->accept(token);
  TokenEvent event{r.id(), token, std::nullopt};
  if (r.params().prompt_logprobs && r.n_output() == 0) {
    event.prompt_logprobs = r.take_prompt_logprobs();
  }
  if (want_logprobs) event.logprobs = token_logprobs(raw_row_.data(), vocab, token, *want_logprobs);
  emit(r, std::move(event), out);
}

void Engine::emit(Request& r, TokenEvent event, StepOutput& out) {
  const int32_t token = event.token;
  r.append_token(token, monotonic_seconds());
  bool stop_string = false;
  if (OutputText* text = r.text()) {
    stop_string = text->push(token);
    event.text = text->take_ready(false);
  }
  out.tokens.push_back(std::move(event));
  if (const auto reason = check_stop(r, token, stop_string)) finish(r, *reason, out);
}

std::optional<RequestFinishReason> Engine::check_stop(const Request& r, int32_t token,
                                                      bool stop_string) const {
  const SamplingParams& p = r.params();
  const auto& eos = config_.eos_token_ids;
  const bool is_eos = std::find(eos.begin(), eos.end(), token) != eos.end();
  const bool is_stop =
      std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end();
  if ((is_eos && !p.ignore_eos) || is_stop) return RequestFinishReason::kStop;
  if (r.n_output() >= p.max_tokens) return RequestFinishReason::kLength;
  if (r.n_tokens() >= config_.scheduler.max_model_len) return RequestFinishReason::kLength;
  if (stop_string || r.grammar_terminated()) return RequestFinishReason::kStop;
  return std::nullopt;
}

void Engine::finish(Request& r, RequestFinishReason reason, StepOutput& out) {
  scheduler_.remove(&r);
  r.finish(reason, monotonic_seconds());
  out.finished.push_back(summary(r));
  requests_.erase(r.id());  // destroys r
}

FinishedRequest Engine::summary(Request& r) {
  FinishedRequest f;
  f.id = r.id();
  f.prompt = r.prompt();
  f.output = r.output();
  f.reason = *r.finish_reason();
  f.times = r.times();
  f.n_preemptions = r.n_preemptions();
  if (OutputText* text = r.text()) f.final_text = text->take_ready(true);
  return f;
}

}  // namespace shardlm
