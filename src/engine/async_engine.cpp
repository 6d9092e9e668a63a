// AsyncEngine: the engine thread's loop.
#include "engine/async_engine.h"

#include <spdlog/spdlog.h>

#include "core/env_flag.h"
#include "core/error.h"

namespace shardlm {

AsyncEngine::AsyncEngine(Engine& engine, StepListener listener)
    : engine_(engine),
      listener_(std::move(listener)),
      deliverer_(env_flag("SHARDLM_DELIVER_THREAD", true)) {
  stats_ = snapshot();
  thread_ = std::thread([this] { loop(); });
}

AsyncEngine::~AsyncEngine() {
  stop();
}

std::vector<std::shared_ptr<RequestStream>> AsyncEngine::submit(
    std::vector<Submission> requests, std::shared_ptr<StreamSignal> signal) {
  // The one validation of these requests; the server's rule: the whole output must fit.
  RequestLimits limits = engine_.limits();
  limits.output_must_fit = true;
  for (const Submission& r : requests) {
    validate_request(limits, r.prompt, r.params);
    validate_resumed_output(limits, r.prompt, r.params, r.resumed, "resume_token_ids");
  }
  std::vector<std::shared_ptr<RequestStream>> streams;
  {
    std::lock_guard lock(mu_);
    if (stopping_) fail("the server is shutting down; send the request elsewhere or retry later");
    if (const std::string f = current_fatal(); !f.empty()) {
      fail("the engine failed and cannot serve: {}", f);
    }
    const int64_t first = engine_.new_request_ids(static_cast<int64_t>(requests.size()));
    for (size_t i = 0; i < requests.size(); ++i) {
      streams.push_back(std::make_shared<RequestStream>(first + int64_t(i), signal));
      inbox_.push_back({std::move(requests[i].prompt), requests[i].params, streams.back(),
                        std::move(requests[i].resumed)});
      ++in_flight_;
    }
  }
  cv_.notify_one();
  return streams;
}

std::shared_ptr<RequestStream> AsyncEngine::submit(std::vector<int32_t> prompt,
                                                   const SamplingParams& params) {
  std::vector<Submission> one;
  one.push_back({std::move(prompt), params});
  return submit(std::move(one)).front();
}

void AsyncEngine::abort(int64_t request_id) {
  {
    std::lock_guard lock(mu_);
    abort_inbox_.push_back(request_id);
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
  return current_fatal();
}

// The runner's own account first (a healing group says what it waits for), else the failed
// step's error while the runner that failed is still the one in use.
std::string AsyncEngine::current_fatal() const {
  if (std::string f = engine_.runner().failure(); !f.empty()) return f;
  const bool current = !fatal_error_.empty() && engine_.runner().epoch() == fatal_epoch_;
  return current ? fatal_error_ : "";
}

void AsyncEngine::follow_runner_epoch() {
  const uint64_t epoch = engine_.runner().epoch();
  if (epoch == seen_epoch_) return;
  seen_epoch_ = epoch;
  engine_.reset_prefix_cache();  // the K/V behind it went with the old runner
  std::lock_guard lock(mu_);
  fatal_error_.clear();
  spdlog::info("the model runner was rebuilt (epoch {}): serving again, prefix cache cleared",
               epoch);
}

std::future<void> AsyncEngine::run_between_steps(std::function<void(Engine&)> task) {
  Task t{std::move(task), {}};
  std::future<void> done = t.done.get_future();
  {
    std::lock_guard lock(mu_);
    if (stopping_) fail("the server is shutting down; send the request elsewhere or retry later");
    task_inbox_.push_back(std::move(t));
  }
  cv_.notify_one();
  return done;
}

void AsyncEngine::run_tasks(std::vector<Task>& tasks) {
  for (Task& t : tasks) {
    try {
      t.run(engine_);
      t.done.set_value();
    } catch (...) {
      t.done.set_exception(std::current_exception());
    }
  }
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
  std::vector<Task> tasks;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] {
      return stopping_ || !inbox_.empty() || !abort_inbox_.empty() || !task_inbox_.empty() ||
             engine_.has_unfinished();
    });
    if (stopping_) return false;
    pending.swap(inbox_);
    aborts.swap(abort_inbox_);
    tasks.swap(task_inbox_);
  }
  admit(pending);
  apply_aborts(aborts);
  run_tasks(tasks);
  return true;
}

void AsyncEngine::admit(std::vector<Pending>& pending) {
  for (Pending& p : pending) {
    const int64_t id = p.stream->id();
    const auto n_prompt = static_cast<int32_t>(p.prompt.size());
    engine_.add_validated_request(id, std::move(p.prompt), p.params, p.resumed);  // validated
    processor_.add(id, n_prompt, static_cast<int32_t>(p.resumed.size()));
    streams_[id] = p.stream;
  }
}

void AsyncEngine::apply_aborts(const std::vector<int64_t>& request_ids) {
  for (int64_t id : request_ids) engine_.abort_request(id);  // false for a finished one
}

// Hands the pushes over; the deliverer's thread makes them while the next step runs.
void AsyncEngine::deliver(std::vector<RequestOutput>& outputs) {
  for (RequestOutput& out : outputs) {
    const auto it = streams_.find(out.request_id);
    if (it == streams_.end()) continue;
    std::shared_ptr<RequestStream> stream = it->second;
    if (out.finished()) {  // before the push: whoever sees the final output sees the count drop too
      streams_.erase(it);
      --in_flight_;
    }
    batch_.push_back({std::move(stream), std::move(out)});
  }
  deliverer_.hand_over(batch_);
}

void AsyncEngine::run_step() {
  const double start = monotonic_seconds();
  const StepOutput step = engine_.step();
  std::vector<RequestOutput> outputs = processor_.process(step);
  engine_.step_profile().mark(StepProfile::kOutputs);
  const EngineStats st = snapshot();
  {
    std::lock_guard lock(mu_);
    stats_ = st;
  }
  // Metrics first, then the streams: a client that has its final chunk finds it counted.
  if (listener_) listener_({step, st, monotonic_seconds() - start});
  deliver(outputs);
  engine_.step_profile().mark(StepProfile::kDeliver);
}

// Through the deliverer too: a failure lands after the outputs handed over before it.
void AsyncEngine::fail_all(const std::string& error) {
  for (auto& [id, stream] : streams_) {
    engine_.abort_request(id);
    --in_flight_;
    batch_.push_back({std::move(stream), {}, error});
  }
  streams_.clear();
  deliverer_.hand_over(batch_);
}

void AsyncEngine::loop() {
  while (true) {
    try {
      if (!wait_for_work()) break;
      follow_runner_epoch();
      if (engine_.has_unfinished()) run_step();
    } catch (const std::exception& e) {
      spdlog::error("engine step failed: {}; aborting the requests in flight", e.what());
      {
        std::lock_guard lock(mu_);
        fatal_error_ = e.what();
        fatal_epoch_ = engine_.runner().epoch();
      }
      fail_all(e.what());
    }
  }
  shut_down();
}

// End every request with a final output, then wait until the streams have them all.
void AsyncEngine::shut_down() {
  std::vector<Pending> pending;
  std::vector<Task> tasks;
  {
    std::lock_guard lock(mu_);
    pending.swap(inbox_);
    tasks.swap(task_inbox_);
  }
  for (Task& t : tasks) {
    t.done.set_exception(std::make_exception_ptr(Error("the server is shutting down")));
  }
  for (Pending& p : pending) {
    --in_flight_;
    batch_.push_back({std::move(p.stream), {}, std::string("the server is shutting down")});
  }
  deliverer_.hand_over(batch_);
  for (const auto& [id, stream] : streams_) engine_.abort_request(id);
  try {
    run_step();  // reports the aborted requests, with their output so far, to their streams
    while (engine_.batches_in_flight() > 0) run_step();  // a pipeline's batches come back first
  } catch (const std::exception& e) {
    fail_all(e.what());
  }
  deliverer_.flush();  // stop() returns with every stream ended
}

}  // namespace shardlm
