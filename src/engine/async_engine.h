// The engine on its own thread, for the server: any thread submits requests and gets a
// RequestStream for each; the engine thread admits new requests and aborts between steps, runs
// schedule -> run -> postprocess, gathers each request's new tokens and text (OutputProcessor) and
// hands them to a StreamDeliverer, whose thread pushes each to its stream (waking the waiting
// thread) while the engine thread goes on to the next step. After every step a listener (metrics,
// the periodic log) gets the step and a snapshot of the engine's state, before the hand-over.
//
// A request has one id, an int64 the engine hands out when it is submitted
// (Engine::new_request_ids): the engine's Request, its TokenEvents and FinishedRequest, its
// RequestOutputs, its RequestStream, abort() and the HTTP response id all carry that same number.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "engine/output_processor.h"
#include "engine/request_stream.h"
#include "engine/stream_deliverer.h"

namespace shardlm {

struct EngineStats {
  int running = 0;
  int waiting = 0;
  int preempted_waiting = 0;  // waiting requests that were preempted
  double kv_usage = 0;        // fraction of KV blocks held by requests
  int64_t kv_total_tokens = 0;
  PrefixCacheStats prefix;  // cumulative
  double comm_seconds = 0;  // cumulative time the master spent communicating with other ranks
};

struct StepReport {
  const StepOutput& step;
  const EngineStats& stats;
  double seconds;  // time the step took
};

class AsyncEngine {
 public:
  using StepListener = std::function<void(const StepReport&)>;

  // The engine detokenizes and matches stop strings itself, with the tokenizer it was built with.
  explicit AsyncEngine(Engine& engine, StepListener listener = {});
  ~AsyncEngine();  // stop()

  struct Submission {
    std::vector<int32_t> prompt;
    SamplingParams params;
    // A migrated request's output so far (Request::resume); validated with the request.
    std::vector<int32_t> resumed = {};
  };
  // Validates every request now (validate_request with output_must_fit: the prompt plus
  // max_tokens must fit the context; throws InvalidRequest, or Error when the engine cannot
  // serve, and queues none), gives them consecutive ids and queues them for the next step. Their
  // streams are created with `signal` (StreamSet::signal()), or none. Stream i has id
  // streams[0]->id() + i.
  std::vector<std::shared_ptr<RequestStream>> submit(
      std::vector<Submission> requests, std::shared_ptr<StreamSignal> signal = nullptr);
  std::shared_ptr<RequestStream> submit(std::vector<int32_t> prompt, const SamplingParams& params);
  // Ends the request before its next step; its stream gets a final output with reason abort.
  void abort(int64_t request_id);
  // Aborts every request in flight and joins the thread; when it returns, each stream has its
  // final output.
  void stop();
  // Runs `task` on the engine thread between two steps (the KV transfer reads and writes cache
  // blocks there, where the block manager and the backend are the engine's alone). The future
  // holds the task's exception, or Error when the engine stops first.
  std::future<void> run_between_steps(std::function<void(Engine&)> task);

  EngineStats stats() const;
  size_t in_flight() const { return in_flight_.load(); }
  // Set when a step failed (e.g. a rank of the group died): the engine cannot serve any more.
  std::string fatal_error() const;

 private:
  struct Task {
    std::function<void(Engine&)> run;
    std::promise<void> done;
  };
  void run_tasks(std::vector<Task>& tasks);
  struct Pending {
    std::vector<int32_t> prompt;
    SamplingParams params;
    std::shared_ptr<RequestStream> stream;
    std::vector<int32_t> resumed;
  };
  void loop();
  void shut_down();
  bool wait_for_work();
  void admit(std::vector<Pending>& pending);
  void apply_aborts(const std::vector<int64_t>& request_ids);
  void run_step();
  void deliver(std::vector<RequestOutput>& outputs);
  void fail_all(const std::string& error);
  EngineStats snapshot() const;

  Engine& engine_;
  OutputProcessor processor_;
  StepListener listener_;

  mutable std::mutex mu_;  // guards the inbox, stopping_ and stats_
  std::condition_variable cv_;
  std::vector<Pending> inbox_;
  std::vector<int64_t> abort_inbox_;
  std::vector<Task> task_inbox_;
  bool stopping_ = false;
  std::string fatal_error_;  // a failed step's error, while the runner's epoch is fatal_epoch_
  uint64_t fatal_epoch_ = 0;
  EngineStats stats_;
  std::atomic<size_t> in_flight_{0};

  std::string current_fatal() const;  // under mu_
  void follow_runner_epoch();          // engine thread: a rebuilt runner serves again

  // Engine thread only.
  uint64_t seen_epoch_ = 0;
  std::unordered_map<int64_t, std::shared_ptr<RequestStream>> streams_;  // by request id
  StreamDeliverer::Batch batch_;  // the pushes being gathered for the deliverer
  // Every push and fail goes through it, in order (SHARDLM_DELIVER_THREAD=0: inline).
  StreamDeliverer deliverer_;
  std::thread thread_;
};

}  // namespace shardlm
