// The few CUPTI activity functions the kernel trace (kernel_trace.h) calls, from libcupti loaded
// at run time (dlopen) so that the server neither links nor needs it: a machine without CUPTI
// runs as before and only the trace is off. Types come from cupti.h (decltype), so a signature
// that changes fails to compile rather than to run.
#pragma once

#include <cupti.h>

#include <string>

namespace shardlm::cuda {

struct CuptiApi {
  decltype(&cuptiActivityRegisterCallbacks) register_callbacks = nullptr;
  decltype(&cuptiActivityEnable) enable = nullptr;
  decltype(&cuptiActivityDisable) disable = nullptr;
  decltype(&cuptiActivityFlushAll) flush_all = nullptr;
  decltype(&cuptiActivityGetNextRecord) next_record = nullptr;
  decltype(&cuptiActivityGetNumDroppedRecords) dropped_records = nullptr;
  decltype(&cuptiGetResultString) result_string = nullptr;

  // "CUPTI_ERROR_...", for messages.
  std::string describe(CUptiResult r) const;
};

// The process's CUPTI, loaded at the first call ("libcupti.so.13", "libcupti.so", then the CUDA
// toolkit's copies); null when none loads or a function is missing, with `why` saying what was
// tried. Later calls give the same answer; the library stays loaded.
const CuptiApi* load_cupti(std::string* why);

}  // namespace shardlm::cuda
