// The GPU's busy time from activity intervals that may overlap (kernels on several streams) and
// arrive a little out of order (a trace's buffers): the length of their union, the window from
// the first start to the last end, and the idle gaps inside it, the long ones (no work queued: a
// server waiting for requests) apart. Memory is fixed: intervals wait in a reorder window, a
// min-heap on their start of a set size, and leave it in order into a sweep that keeps only the
// interval it is growing. An interval that comes after the sweep has passed its start counts from
// there on only (`late`). Pure C++: the CUDA kernel trace (backend/cuda/kernel_trace.h) feeds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace shardlm {

class BusyTime {
 public:
  struct Totals {
    uint64_t busy_ns = 0;      // the union of the intervals
    uint64_t window_ns = 0;    // the first start to the last end
    uint64_t long_gap_ns = 0;  // the idle gaps of at least the long-gap length, summed
    int64_t long_gaps = 0;
    int64_t intervals = 0;
    int64_t late = 0;  // came after the sweep had passed their start: busy may be short
  };

  static constexpr size_t kReorderWindow = 4096;
  static constexpr uint64_t kLongGapNs = 100'000'000;  // 100 ms

  explicit BusyTime(size_t reorder_window = kReorderWindow, uint64_t long_gap_ns = kLongGapNs);

  // One interval [start_ns, end_ns) on the GPU's clock; an empty or reversed one is ignored.
  // Allocates nothing.
  void add(uint64_t start_ns, uint64_t end_ns);
  // Everything added so far (the reorder window drained into a copy: adding may go on).
  Totals totals() const;

 private:
  using Interval = std::pair<uint64_t, uint64_t>;
  // The union so far, swept in order of start.
  struct Sweep {
    bool started = false;
    uint64_t start = 0, end = 0;  // the interval being grown
    Totals t;
    void take(Interval iv, uint64_t long_gap_ns);
  };

  size_t reorder_window_;
  uint64_t long_gap_ns_;
  std::vector<Interval> heap_;  // min-heap on start, at most reorder_window_ entries
  Sweep sweep_;
  uint64_t first_ = UINT64_MAX, last_ = 0;
  int64_t intervals_ = 0;
};

}  // namespace shardlm
