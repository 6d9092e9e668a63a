// KernelTrace: CUPTI's activity buffers (kernels, memcpy, memset) summed into a KernelTraceTable.
#include "backend/cuda/kernel_trace.h"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "backend/cuda/cupti_api.h"
#include "core/env_flag.h"

namespace shardlm::cuda {

using Kind = KernelTraceTable::Kind;

struct KernelTrace::State {
  const CuptiApi* api = nullptr;
  std::mutex mu;  // over what follows: CUPTI's thread adds records, the owner reads
  KernelTraceTable table;
  // A record's name pointer to its row: CUPTI shares one name string among all the records of a
  // kernel, so a row is found by pointer (no string hashed per record).
  std::unordered_map<const char*, int> rows;
  uint64_t dropped = 0;

  int row(const char* name, Kind kind);
  void add(const CUpti_Activity* record);
  void take(CUcontext context, uint32_t stream, uint8_t* buffer, size_t valid);
};

namespace {

constexpr std::array<CUpti_ActivityKind, 3> kKinds = {
    CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET};
constexpr std::array<const char*, 3> kKindNames = {"kernels", "memcpy", "memset"};
constexpr size_t kBufferBytes = size_t{8} << 20;  // CUPTI's samples' size: ~40,000 kernel records
constexpr int kDefaultTop = 40;

// The trace CUPTI's buffer callbacks feed. A process-wide slot because those callbacks take no
// user pointer (and CUPTI traces the whole process anyway): claimed by start(), fed once the trace
// runs, freed by stop().
struct Slot {
  std::mutex mu;
  bool claimed = false;
  KernelTrace::State* state = nullptr;
};
Slot& slot() {
  static Slot s;
  return s;
}

// Claims the slot for a trace; false when another trace has it.
bool claim_slot() {
  std::lock_guard lock(slot().mu);
  if (slot().claimed) return false;
  slot().claimed = true;
  return true;
}

// Feeds `state` (null: none) from now on; the slot stays claimed while a state is fed.
void feed_slot(KernelTrace::State* state) {
  std::lock_guard lock(slot().mu);
  slot().state = state;
  slot().claimed = state != nullptr;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext context, uint32_t stream, uint8_t* buffer, size_t,
                               size_t valid) {
  {
    std::lock_guard lock(slot().mu);
    if (KernelTrace::State* s = slot().state) s->take(context, stream, buffer, valid);
  }
  std::free(buffer);
}

// CUPTI takes its callbacks once per process; "" when it did.
const std::string& register_callbacks(const CuptiApi& api) {
  static const std::string why = [&api] {
    const CUptiResult r = api.register_callbacks(buffer_requested, buffer_completed);
    return r == CUPTI_SUCCESS ? std::string()
                              : "registering its buffer callbacks: " + api.describe(r);
  }();
  return why;
}

const char* memcpy_name(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return "[memcpy HtoD]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return "[memcpy DtoH]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return "[memcpy DtoD]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH:
      return "[memcpy HtoH]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP:
      return "[memcpy PtoP]";
    default:
      return "[memcpy other]";
  }
}

// Turns on the activity kinds traced; "" when all are on, else why not (and none is).
std::string enable_kinds(const CuptiApi& api) {
  for (size_t i = 0; i < kKinds.size(); ++i) {
    if (const CUptiResult r = api.enable(kKinds[i]); r != CUPTI_SUCCESS) {
      const std::string why =
          fmt::format("enabling CUPTI's activity kind {} ({}): {}", static_cast<int>(kKinds[i]),
                      kKindNames[i], api.describe(r));
      for (size_t j = 0; j < i; ++j) api.disable(kKinds[j]);
      return why;
    }
  }
  return "";
}

// SHARDLM_CUDA_KERNEL_TRACE_TOP: the rows the report shows.
int top_rows() {
  const char* v = std::getenv("SHARDLM_CUDA_KERNEL_TRACE_TOP");
  if (!v || !*v) return kDefaultTop;
  int n = 0;
  const auto [end, ec] = std::from_chars(v, v + std::strlen(v), n);
  if (ec == std::errc() && *end == '\0' && n > 0) return n;
  spdlog::warn("SHARDLM_CUDA_KERNEL_TRACE_TOP={} is not a positive number of rows; showing {}", v,
               kDefaultTop);
  return kDefaultTop;
}

}  // namespace

int KernelTrace::State::row(const char* name, Kind kind) {
  if (!name) name = "(unnamed kernel)";
  if (auto it = rows.find(name); it != rows.end()) return it->second;
  const int id = table.intern(name, kind);
  rows.emplace(name, id);
  return id;
}

void KernelTrace::State::add(const CUpti_Activity* record) {
  switch (record->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      table.add(row(k->name, Kind::kKernel), k->start, k->end);
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
      table.add(row(memcpy_name(m->copyKind), Kind::kCopy), m->start, m->end);
      break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
      table.add(row("[memset]", Kind::kCopy), m->start, m->end);
      break;
    }
    default:
      break;
  }
}

void KernelTrace::State::take(CUcontext context, uint32_t stream, uint8_t* buffer, size_t valid) {
  std::lock_guard lock(mu);
  CUpti_Activity* record = nullptr;
  while (valid > 0 && api->next_record(buffer, valid, &record) == CUPTI_SUCCESS) add(record);
  size_t n = 0;
  if (api->dropped_records(context, stream, &n) == CUPTI_SUCCESS) dropped += n;
}

KernelTrace::KernelTrace() : KernelTrace(env_flag("SHARDLM_CUDA_KERNEL_TRACE", false)) {}

KernelTrace::KernelTrace(bool on) {
  if (on) start();
}

KernelTrace::~KernelTrace() {
  if (!state_) return;
  const std::string r = report();
  stop();
  if (!r.empty()) std::fprintf(stderr, "%s", r.c_str());
}

void KernelTrace::start() {
  const CuptiApi* api = load_cupti(&why_off_);
  if (api) why_off_ = register_callbacks(*api);
  if (why_off_.empty() && !claim_slot()) {
    why_off_ = "another backend's trace runs in this process (it records every device's kernels)";
  }
  if (why_off_.empty()) {
    state_ = std::make_unique<State>();
    state_->api = api;
    feed_slot(state_.get());
    why_off_ = enable_kinds(*api);
    if (!why_off_.empty()) {
      feed_slot(nullptr);
      state_.reset();
    }
  }
  if (!why_off_.empty()) spdlog::warn("SHARDLM_CUDA_KERNEL_TRACE: no kernel trace: {}", why_off_);
}

void KernelTrace::stop() {
  for (CUpti_ActivityKind k : kKinds) state_->api->disable(k);
  state_->api->flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  feed_slot(nullptr);
}

KernelTraceTable::Summary KernelTrace::flush() {
  if (!state_) return {};
  if (cudaDeviceSynchronize() != cudaSuccess) cudaGetLastError();  // records complete
  state_->api->flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);        // and delivered
  std::lock_guard lock(state_->mu);
  return state_->table.summary();
}

std::string KernelTrace::report() {
  if (!state_) return "";
  flush();
  std::lock_guard lock(state_->mu);
  std::string r =
      state_->table.report(top_rows(), "CUDA kernel trace (SHARDLM_CUDA_KERNEL_TRACE, CUPTI)");
  if (state_->dropped > 0 && !r.empty()) {
    r.insert(r.size() - 1, fmt::format("CUPTI dropped {} records (its buffers were full): the "
                                       "totals are short\n",
                                       state_->dropped));
  }
  return r;
}

}  // namespace shardlm::cuda
