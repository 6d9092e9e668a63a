// KernelTraceTable: per-kernel totals from trace records and their report.
#include "backend/kernel_trace_table.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/kernel_name.h"

namespace shardlm {

namespace {

constexpr size_t kNameWidth = 90;

double ms(uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}
double us(uint64_t ns) {
  return static_cast<double>(ns) / 1e3;
}

std::string row_line(const KernelTraceTable::Row& r, size_t width, uint64_t busy_ns) {
  const bool kernel = r.kind == KernelTraceTable::Kind::kKernel;
  const std::string share =
      kernel && busy_ns > 0 ? fmt::format("{:.1f}%", 100.0 * r.total_ns / busy_ns) : "-";
  return fmt::format("{:<{}} {:>9} {:>10.3f} {:>7} {:>9.2f} {:>9.2f} {:>9.2f}\n",
                     short_kernel_name(r.name, kNameWidth), width, r.calls, ms(r.total_ns), share,
                     us(r.total_ns) / static_cast<double>(r.calls), us(r.min_ns), us(r.max_ns));
}

// The busy time, the window and the idle share, with and without the long gaps.
std::string totals_lines(const BusyTime::Totals& b) {
  const auto idle = [&](uint64_t window) {
    return window > 0 ? 100.0 * static_cast<double>(window - std::min(window, b.busy_ns)) / window
                      : 0.0;
  };
  std::string s = fmt::format(
      "GPU busy {:.3f} ms (the kernels' union) of a {:.3f} ms window (first kernel to last): "
      "idle {:.1f}%\n",
      ms(b.busy_ns), ms(b.window_ns), idle(b.window_ns));
  if (b.long_gaps > 0) {
    s += fmt::format(
        "leaving out {} idle gaps of {} ms or more ({:.3f} ms: no work queued): idle {:.1f}% of "
        "the rest\n",
        b.long_gaps, BusyTime::kLongGapNs / 1'000'000, ms(b.long_gap_ns),
        idle(b.window_ns - b.long_gap_ns));
  }
  if (b.late > 0) {
    s += fmt::format("{} kernels arrived out of order past the reorder window: busy may be short\n",
                     b.late);
  }
  return s;
}

}  // namespace

int KernelTraceTable::intern(std::string_view name, Kind kind) {
  if (auto it = ids_.find(name); it != ids_.end()) return it->second;
  const int id = static_cast<int>(rows_.size());
  rows_.push_back({std::string(name), kind});
  ids_.emplace(std::string(name), id);
  return id;
}

void KernelTraceTable::add(int id, uint64_t start_ns, uint64_t end_ns) {
  if (start_ns == 0 || end_ns < start_ns) {
    ++untimed_;
    return;
  }
  Row& r = rows_[static_cast<size_t>(id)];
  const uint64_t d = end_ns - start_ns;
  ++r.calls;
  r.total_ns += d;
  r.min_ns = std::min(r.min_ns, d);
  r.max_ns = std::max(r.max_ns, d);
  if (r.kind == Kind::kKernel) kernels_.add(start_ns, end_ns);
}

KernelTraceTable::Summary KernelTraceTable::summary() const {
  Summary s;
  for (const Row& r : rows_) {
    if (r.calls == 0) continue;
    s.rows.push_back(r);
    if (r.kind == Kind::kKernel) s.kernel_calls += r.calls;
  }
  std::stable_sort(s.rows.begin(), s.rows.end(),
                   [](const Row& a, const Row& b) { return a.total_ns > b.total_ns; });
  s.busy = kernels_.totals();
  s.untimed = untimed_;
  return s;
}

std::string KernelTraceTable::report(int top, std::string_view title) const {
  const Summary s = summary();
  if (s.rows.empty()) return "";
  const size_t shown = std::min(s.rows.size(), static_cast<size_t>(std::max(top, 0)));
  size_t width = 6;
  for (size_t i = 0; i < shown; ++i) {
    width = std::max(width, short_kernel_name(s.rows[i].name, kNameWidth).size());
  }
  std::string out =
      fmt::format("\n{}: {} kernel runs; the {} longest of {} names by total GPU time\n", title,
                  s.kernel_calls, shown, s.rows.size());
  out += fmt::format("{:<{}} {:>9} {:>10} {:>7} {:>9} {:>9} {:>9}\n", "kernel", width, "calls",
                     "total ms", "busy %", "mean us", "min us", "max us");
  for (size_t i = 0; i < shown; ++i) out += row_line(s.rows[i], width, s.busy.busy_ns);
  out += totals_lines(s.busy);
  if (s.untimed > 0) out += fmt::format("{} records without timestamps left out\n", s.untimed);
  return out + "\n";
}

}  // namespace shardlm
