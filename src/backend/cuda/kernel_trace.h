// A per-kernel GPU timeline through CUPTI's activity API (SHARDLM_CUDA_KERNEL_TRACE=1): every
// kernel the process runs, the kernels of replayed CUDA graphs included (CUPTI records each graph
// node's kernel), and every memcpy and memset, with its start and end on the GPU, summed per name
// in a KernelTraceTable (backend/kernel_trace_table.h). Nothing is synchronised and no launch
// changes: CUPTI writes the timestamps and hands over full buffers on its own thread. When the
// trace ends (its backend is destroyed) the records are flushed and the table goes to stderr: the
// SHARDLM_CUDA_KERNEL_TRACE_TOP kernels (default 40) by total GPU time, then the GPU's busy time
// and idle share inside the traced window. libcupti is loaded at run time (cupti_api.h): when it
// cannot be, one warning and the trace stays off.
//
// CUPTI traces the whole process, so one trace runs at a time: the first made with the switch on
// owns it (the kernels of every device of the process go into it); one made while it lives stays
// off.
#pragma once

#include <memory>
#include <string>

#include "backend/kernel_trace_table.h"

namespace shardlm::cuda {

class KernelTrace {
 public:
  KernelTrace();  // on when SHARDLM_CUDA_KERNEL_TRACE is set
  explicit KernelTrace(bool on);
  ~KernelTrace();  // flushes, stops and prints the report
  KernelTrace(const KernelTrace&) = delete;
  KernelTrace& operator=(const KernelTrace&) = delete;

  bool enabled() const { return state_ != nullptr; }
  // Why a trace that was asked for is off; "" otherwise.
  const std::string& why_off() const { return why_off_; }
  // Waits for the device's work so far, takes every record CUPTI holds and returns all rows.
  KernelTraceTable::Summary flush();
  // flush(), then the table of the top rows (empty when off or nothing ran).
  std::string report();

  struct State;  // what CUPTI's buffer callbacks feed (kernel_trace.cpp)

 private:
  void start();
  void stop();

  std::unique_ptr<State> state_;
  std::string why_off_;
};

}  // namespace shardlm::cuda
