// Where the GPU's time goes, kernel by kernel, from a trace's records (name, start, end in ns on
// the GPU's clock): calls, total, shortest and longest per name, the GPU's busy time (the union of
// the kernels' intervals: kernels on several streams overlap) and the window from the first
// kernel to the last, so the GPU's idle time inside it is known; and the report behind
// SHARDLM_CUDA_KERNEL_TRACE (backend/cuda/kernel_trace.h, which feeds it CUPTI's records). Copies
// (memcpy, memset) are rows of their own and do not count as busy. Pure C++ (the CPU tests hold
// it). Not thread-safe: the caller serialises.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "backend/busy_time.h"

namespace shardlm {

class KernelTraceTable {
 public:
  enum class Kind { kKernel, kCopy };
  struct Row {
    std::string name;  // as recorded (a kernel's mangled symbol)
    Kind kind = Kind::kKernel;
    int64_t calls = 0;
    uint64_t total_ns = 0, min_ns = UINT64_MAX, max_ns = 0;
  };
  struct Summary {
    std::vector<Row> rows;  // by total time, the longest first
    BusyTime::Totals busy;  // over the kernels
    int64_t kernel_calls = 0;
    int64_t untimed = 0;  // records without a valid start and end, left out
  };

  // The row of `name`, made at its first sight (the only allocation, once per name).
  int intern(std::string_view name, Kind kind = Kind::kKernel);
  // One record of row `id`; a record without timestamps (0, or an end before its start) is
  // counted as untimed only. Allocates nothing.
  void add(int id, uint64_t start_ns, uint64_t end_ns);
  void add(std::string_view name, uint64_t start_ns, uint64_t end_ns) {
    add(intern(name), start_ns, end_ns);
  }

  Summary summary() const;
  // The table: the `top` rows by total time (names shortened: backend/kernel_name.h) with calls,
  // total ms, share of the busy time, mean / min / max us; then the busy time, the window and the
  // idle share, also without the long gaps (BusyTime). Empty when nothing was recorded.
  std::string report(int top, std::string_view title) const;

 private:
  std::vector<Row> rows_;
  std::map<std::string, int, std::less<>> ids_;
  BusyTime kernels_;
  int64_t untimed_ = 0;
};

}  // namespace shardlm
