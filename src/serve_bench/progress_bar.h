// A one-line progress bar on stderr, drawn only when stderr is a terminal: requests done out of
// the total, failures, elapsed time.
#pragma once

#include <chrono>
#include <string>

namespace shardlm::serve_bench {

bool stderr_is_terminal();

class ProgressBar {
 public:
  ProgressBar(std::string label, size_t total);  // enabled when stderr is a terminal
  ProgressBar(std::string label, size_t total, bool enabled);
  ~ProgressBar();

  // Redraws at most every 100 ms, and always for the last request.
  void update(size_t done, size_t failed);

 private:
  std::string label_;
  size_t total_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace shardlm::serve_bench
