// BusyTime: the union of overlapping, nearly ordered intervals through a reorder window.
#include "backend/busy_time.h"

#include <algorithm>
#include <functional>

namespace shardlm {

BusyTime::BusyTime(size_t reorder_window, uint64_t long_gap_ns)
    : reorder_window_(std::max<size_t>(reorder_window, 1)), long_gap_ns_(long_gap_ns) {
  heap_.reserve(reorder_window_ + 1);
}

void BusyTime::add(uint64_t start_ns, uint64_t end_ns) {
  if (end_ns <= start_ns) return;
  ++intervals_;
  first_ = std::min(first_, start_ns);
  last_ = std::max(last_, end_ns);
  heap_.emplace_back(start_ns, end_ns);
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  if (heap_.size() <= reorder_window_) return;
  std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
  sweep_.take(heap_.back(), long_gap_ns_);
  heap_.pop_back();
}

void BusyTime::Sweep::take(Interval iv, uint64_t long_gap_ns) {
  auto [s, e] = iv;
  if (!started) {
    started = true;
    start = s, end = e;
    return;
  }
  if (s < start) {  // behind the sweep: only what lies past `start` can still be counted
    ++t.late;
    s = start;
    if (e <= s) return;
  }
  if (s <= end) {
    end = std::max(end, e);
    return;
  }
  t.busy_ns += end - start;
  if (s - end >= long_gap_ns) {
    t.long_gap_ns += s - end;
    ++t.long_gaps;
  }
  start = s, end = e;
}

BusyTime::Totals BusyTime::totals() const {
  std::vector<Interval> pending = heap_;
  std::sort(pending.begin(), pending.end());
  Sweep sweep = sweep_;
  for (const Interval& iv : pending) sweep.take(iv, long_gap_ns_);
  Totals t = sweep.t;
  if (sweep.started) t.busy_ns += sweep.end - sweep.start;
  t.window_ns = intervals_ > 0 ? last_ - first_ : 0;
  t.intervals = intervals_;
  return t;
}

}  // namespace shardlm
