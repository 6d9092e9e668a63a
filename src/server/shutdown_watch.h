// What SIGINT and SIGTERM do to a rank, by phase (the signals arrive as events through
// core/shutdown_signals.h):
// - start-up (loading, joining the group): stop now. The process exits 128 + signal after
//   `on_startup_signal` (the master uses it to tell the waiting ranks why it stopped).
// - serving, master: the caller takes over (serving_as_master()) and drains.
// - serving, worker: keep going. Under a terminal, mpirun or srun every rank gets the signal at
//   once; the master drains its streams and then ends the group, which ends this rank with 0.
//   Only when the master has not done that within `wait` does the rank leave on its own.
// - any phase, supervised rank: when the node's supervisor died, exit 1 at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace shardlm::server {

class ShutdownWatch {
 public:
  // who: "rank 3" or "the server", for the log lines.
  ShutdownWatch(std::string who, std::function<void(const std::string&)> on_startup_signal = {});
  ~ShutdownWatch();
  ShutdownWatch(const ShutdownWatch&) = delete;
  ShutdownWatch& operator=(const ShutdownWatch&) = delete;

  void serving_as_worker(std::chrono::milliseconds wait);
  // Stops watching. Returns a signal the watch read meanwhile (0 if none); later ones stay queued
  // for the caller's shutdown_signals::wait().
  int serving_as_master();

 private:
  enum class Phase { startup, worker, master };
  void run();
  void on_signal(int sig);
  void check_deadline();

  const std::string who_;
  const std::function<void(const std::string&)> on_startup_signal_;
  std::mutex mu_;  // guards phase_, wait_, first_signal_, deadline_
  Phase phase_ = Phase::startup;
  std::chrono::milliseconds wait_{0};
  int first_signal_ = 0;
  int handed_over_ = 0;  // a signal read while the master took over
  std::chrono::steady_clock::time_point deadline_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace shardlm::server
