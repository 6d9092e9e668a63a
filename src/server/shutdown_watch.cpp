// ShutdownWatch: one thread that reads shutdown signals until the master's main thread takes
// over, or the process ends.
#include "server/shutdown_watch.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "core/shutdown_signals.h"
#include "parallel/supervisor.h"

namespace shardlm::server {

namespace {

[[noreturn]] void exit_now(int status) {
  spdlog::default_logger()->flush();
  std::_Exit(status);  // no destructors: other threads may be inside a load or a collective
}

}  // namespace

ShutdownWatch::ShutdownWatch(std::string who, std::function<void(const std::string&)> on_startup)
    : who_(std::move(who)), on_startup_signal_(std::move(on_startup)) {
  thread_ = std::thread([this] { run(); });
}

ShutdownWatch::~ShutdownWatch() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

void ShutdownWatch::serving_as_worker(std::chrono::milliseconds wait) {
  std::lock_guard<std::mutex> lock(mu_);
  phase_ = Phase::worker;
  wait_ = wait;
}

int ShutdownWatch::serving_as_master() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = Phase::master;
  }
  done_ = true;
  if (thread_.joinable()) thread_.join();
  return handed_over_;
}

void ShutdownWatch::run() {
  while (!done_) {
    const int sig = shutdown_signals::wait(std::chrono::milliseconds(100));
    if (parallel::supervisor_gone()) {
      spdlog::error("{}: the node's supervisor died; exiting", who_);
      exit_now(1);
    }
    if (sig != 0) on_signal(sig);
    check_deadline();
  }
}

void ShutdownWatch::on_signal(int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  if (phase_ == Phase::master) {
    handed_over_ = sig;
    return;
  }
  if (phase_ == Phase::startup) {
    const std::string reason =
        fmt::format("{} stopped by {} during start-up", who_, shutdown_signals::name(sig));
    spdlog::info("{}", reason);
    if (on_startup_signal_) on_startup_signal_(reason);
    exit_now(128 + sig);
  }
  if (first_signal_ != 0) {
    spdlog::info("{}: {} again; still waiting for the master to end the group", who_,
                 shutdown_signals::name(sig));
    return;
  }
  first_signal_ = sig;
  deadline_ = std::chrono::steady_clock::now() + wait_;
  spdlog::info(
      "{}: {} received; the master drains its requests and then ends the group "
      "(waiting up to {} s for it)",
      who_, shutdown_signals::name(sig), wait_.count() / 1000);
}

void ShutdownWatch::check_deadline() {
  std::lock_guard<std::mutex> lock(mu_);
  if (first_signal_ == 0 || std::chrono::steady_clock::now() < deadline_) return;
  spdlog::error("{}: the master did not end the group within {} s of {}; exiting", who_,
                wait_.count() / 1000, shutdown_signals::name(first_signal_));
  exit_now(128 + first_signal_);
}

}  // namespace shardlm::server
