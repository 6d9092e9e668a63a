// Terminal progress bar.
#include "serve_bench/progress_bar.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace shardlm::serve_bench {

bool stderr_is_terminal() {
  return isatty(STDERR_FILENO) != 0;
}

ProgressBar::ProgressBar(std::string label, size_t total)
    : ProgressBar(std::move(label), total, stderr_is_terminal()) {}

ProgressBar::ProgressBar(std::string label, size_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && !finished_ && last_draw_ != std::chrono::steady_clock::time_point{}) {
    std::fputs("\n", stderr);
  }
}

void ProgressBar::update(size_t done, size_t failed) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr size_t kWidth = 30;
  const size_t filled = total_ ? kWidth * done / total_ : kWidth;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string line = fmt::format("\r{} [{}{}] {}/{} {:.1f}s", label_, std::string(filled, '#'),
                                 std::string(kWidth - filled, ' '), done, total_, elapsed);
  if (failed) line += fmt::format(" ({} failed)", failed);
  finished_ = done >= total_;
  if (finished_) line += "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace shardlm::serve_bench
