// AsyncEngine: the engine thread's loop.
#include "engine/async_engine.h"

#include <spdlog/spdlog.h>

#include "core/error.h"

namespace shardlm {

AsyncEngine::AsyncEngine(Engine& engine, const Tokenizer& tokenizer, StepListener listener)
    : engine_(engine), processor_(engine, tokenizer), listener_(std::move(listener)) {
  stats_ = snapshot();
  thread_ = std::thread([this] { loop(); });
}

AsyncEngine::~AsyncEngine() {
  stop();
}

std::shared_ptr<RequestStream> AsyncEngine::submit(std::vector<int32_t> prompt,
                                                   const SamplingParams& params) {
  engine_.validate_request(prompt, params);
  auto stream = std::make_shared<RequestStream>(next_id_++);
  {
    std::lock_guard lock(mu_);
    if (stopping_) fail("the server is shutting down; send the request elsewhere or retry later");
    if (!fatal_error_.empty()) fail("the engine failed and cannot serve: {}", fatal_error_);
    inbox_.push_back({std::move(prompt), params, stream});
    ++in_flight_;
  }
  cv_.notify_one();
  return stream;
}

void AsyncEngine::abort(int64_t stream_id) {
  {
    std::lock_guard lock(mu_);
    abort_inbox_.push_back(stream_id);
  }
  cv_.notify_one();
}

void AsyncEngine::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::string AsyncEngine::fatal_error() const {
  std::lock_guard lock(mu_);
  return fatal_error_.empty() ? engine_.runner().failure() : fatal_error_;
}

EngineStats AsyncEngine::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

EngineStats AsyncEngine::snapshot() const {
  const Scheduler& s = engine_.scheduler();
  const BlockManager& b = engine_.block_manager();
  EngineStats st;
  st.running = static_cast<int>(s.running().size());
  st.waiting = static_cast<int>(s.waiting().size());
  st.preempted_waiting = static_cast<int>(s.n_preempted_waiting());
  st.kv_usage = b.usage();
  st.kv_total_tokens = b.total_blocks() * b.block_size();
  st.prefix = b.stats();
  st.comm_seconds = engine_.runner().comm_seconds();
  return st;
}

bool AsyncEngine::wait_for_work() {
  std::vector<Pending> pending;
  std::vector<int64_t> aborts;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] {
      return stopping_ || !inbox_.empty() || !abort_inbox_.empty() || engine_.has_unfinished();
    });
    if (stopping_) return false;
    pending.swap(inbox_);
    aborts.swap(abort_inbox_);
  }
  admit(pending);
  apply_aborts(aborts);
  return true;
}

void AsyncEngine::admit(std::vector<Pending>& pending) {
  for (Pending& p : pending) {
    const auto n_prompt = static_cast<int32_t>(p.prompt.size());
    const int64_t id = engine_.add_request(std::move(p.prompt), p.params);  // validated at submit
    processor_.add(id, n_prompt, p.params);
    by_engine_id_[id] = p.stream;
    engine_id_of_[p.stream->id()] = id;
  }
}

void AsyncEngine::apply_aborts(const std::vector<int64_t>& stream_ids) {
  for (int64_t sid : stream_ids) {
    const auto it = engine_id_of_.find(sid);
    if (it != engine_id_of_.end()) engine_.abort_request(it->second);
  }
}

void AsyncEngine::deliver(std::vector<RequestOutput>& outputs) {
  for (RequestOutput& out : outputs) {
    const auto it = by_engine_id_.find(out.request_id);
    if (it == by_engine_id_.end()) continue;
    const std::shared_ptr<RequestStream> stream = it->second;
    const bool finished = out.finished();
    out.request_id = stream->id();
    if (finished) {  // before the push: whoever sees the final output sees the count drop too
      engine_id_of_.erase(stream->id());
      by_engine_id_.erase(it);
      --in_flight_;
    }
    stream->push(std::move(out));
  }
}

void AsyncEngine::run_step() {
  const double start = monotonic_seconds();
  const StepOutput step = engine_.step();
  std::vector<RequestOutput> outputs = processor_.process(step);
  const EngineStats st = snapshot();
  {
    std::lock_guard lock(mu_);
    stats_ = st;
  }
  // Metrics first, then the streams: a client that has its final chunk finds it counted.
  if (listener_) listener_({step, st, monotonic_seconds() - start});
  deliver(outputs);
}

void AsyncEngine::fail_all(const std::string& error) {
  for (auto& [engine_id, stream] : by_engine_id_) {
    engine_.abort_request(engine_id);
    stream->fail(error);
    --in_flight_;
  }
  by_engine_id_.clear();
  engine_id_of_.clear();
}

void AsyncEngine::loop() {
  while (true) {
    try {
      if (!wait_for_work()) break;
      if (engine_.has_unfinished()) run_step();
    } catch (const std::exception& e) {
      spdlog::error("engine step failed: {}; aborting the requests in flight", e.what());
      {
        std::lock_guard lock(mu_);
        fatal_error_ = e.what();
      }
      fail_all(e.what());
    }
  }
  // Shutting down: end every request with a final output.
  std::vector<Pending> pending;
  {
    std::lock_guard lock(mu_);
    pending.swap(inbox_);
  }
  for (Pending& p : pending) {
    p.stream->fail("the server is shutting down");
    --in_flight_;
  }
  for (const auto& [engine_id, stream] : by_engine_id_) engine_.abort_request(engine_id);
  try {
    run_step();  // reports the aborted requests, with their output so far, to their streams
  } catch (const std::exception& e) {
    fail_all(e.what());
  }
}

}  // namespace shardlm
