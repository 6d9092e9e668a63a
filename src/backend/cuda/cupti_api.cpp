// load_cupti: dlopen libcupti and resolve the activity functions the kernel trace calls.
#include "backend/cuda/cupti_api.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <array>

namespace shardlm::cuda {

namespace {

constexpr std::array<const char*, 4> kLibraries = {
    "libcupti.so.13", "libcupti.so", "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13",
    "/usr/local/cuda/lib64/libcupti.so.13"};

void* open_library(std::string& why) {
  std::string tried;
  for (const char* name : kLibraries) {
    if (void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL)) return h;
    tried += fmt::format("{}{} ({})", tried.empty() ? "" : ", ", name, dlerror());
  }
  why = "libcupti could not be loaded; tried " + tried +
        ": put libcupti.so.13 (the CUDA toolkit's lib64/ or extras/CUPTI/lib64/) on "
        "LD_LIBRARY_PATH";
  return nullptr;
}

template <typename F>
bool resolve(void* lib, const char* symbol, F& f, std::string& why) {
  f = reinterpret_cast<F>(dlsym(lib, symbol));
  if (!f) why = fmt::format("libcupti has no {}: it is older than this build's CUDA 13", symbol);
  return f != nullptr;
}

struct Loaded {
  CuptiApi api;
  bool ok = false;
  std::string why;
};

Loaded load() {
  Loaded l;
  void* lib = open_library(l.why);
  if (!lib) return l;
  CuptiApi& a = l.api;
  l.ok = resolve(lib, "cuptiActivityRegisterCallbacks", a.register_callbacks, l.why) &&
         resolve(lib, "cuptiActivityEnable", a.enable, l.why) &&
         resolve(lib, "cuptiActivityDisable", a.disable, l.why) &&
         resolve(lib, "cuptiActivityFlushAll", a.flush_all, l.why) &&
         resolve(lib, "cuptiActivityGetNextRecord", a.next_record, l.why) &&
         resolve(lib, "cuptiActivityGetNumDroppedRecords", a.dropped_records, l.why) &&
         resolve(lib, "cuptiGetResultString", a.result_string, l.why);
  return l;  // the library stays loaded either way: CUPTI's threads may outlive any unload
}

}  // namespace

std::string CuptiApi::describe(CUptiResult r) const {
  const char* s = nullptr;
  if (result_string && result_string(r, &s) == CUPTI_SUCCESS && s) return s;
  return fmt::format("CUPTI error {}", static_cast<int>(r));
}

const CuptiApi* load_cupti(std::string* why) {
  static const Loaded loaded = load();  // once per process: dlopen is not for every backend
  if (why) *why = loaded.why;
  return loaded.ok ? &loaded.api : nullptr;
}

}  // namespace shardlm::cuda
