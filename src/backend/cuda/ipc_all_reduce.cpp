#include "backend/cuda/ipc_all_reduce.h"

#include <cuda_runtime.h>

#include <cstring>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/ipc_all_reduce.cuh"
#include "core/error.h"

namespace shardlm::cuda {
namespace {

// Two ranks read the same bytes either way, so one-shot (one barrier less) always wins there;
// above two ranks, two-shot reads 2/world of the message per peer instead of all of it.
constexpr size_t kOneShotMaxBytes = 256 * 1024;

std::string handle_bytes(const cudaIpcMemHandle_t& h) {
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

}  // namespace

struct IpcAllReduce::Impl {
  int rank = 0, world = 1, device = 0;
  size_t capacity = 0;
  uint64_t timeout_ns = 0;
  char* mine = nullptr;              // this rank's peer-visible allocation
  std::vector<char*> opened;         // the peers' allocations as mapped here
  uint32_t* counters = nullptr;      // this rank's per-block call numbers (not shared)
  int* error = nullptr;              // mapped host memory the kernel writes on a timeout
  IpcPeers peers{};

  size_t bytes() const { return capacity * sizeof(float) + kIpcSignalWords * sizeof(uint32_t); }

  // This rank's handle, or "error: why" when it has none to give.
  std::string make_own() {
    try {
      SHARDLM_CUDA_CHECK(cudaSetDevice(device));
      SHARDLM_CUDA_CHECK(cudaMalloc(&mine, bytes()));
      SHARDLM_CUDA_CHECK(cudaMemset(mine, 0, bytes()));
      SHARDLM_CUDA_CHECK(cudaMalloc(&counters, kIpcBlocks * sizeof(uint32_t)));
      SHARDLM_CUDA_CHECK(cudaMemset(counters, 0, kIpcBlocks * sizeof(uint32_t)));
      SHARDLM_CUDA_CHECK(cudaHostAlloc(&error, sizeof(int), cudaHostAllocMapped));
      *error = 0;
      cudaIpcMemHandle_t h;
      SHARDLM_CUDA_CHECK(cudaIpcGetMemHandle(&h, mine));
      SHARDLM_CUDA_CHECK(cudaDeviceSynchronize());  // zeroed before any peer can write
      return handle_bytes(h);
    } catch (const Error& e) {
      return std::string("error: ") + e.what();
    }
  }

  void open_peers(const std::vector<std::string>& handles) {
    for (int r = 0; r < world; ++r) {
      const std::string& b = handles[static_cast<size_t>(r)];
      if (b.size() != sizeof(cudaIpcMemHandle_t))
        fail("the IPC all-reduce: rank {} has no shared buffer ({})", r, b);
    }
    for (int r = 0; r < world; ++r) {
      char* base = mine;
      if (r != rank) {
        cudaIpcMemHandle_t h;
        std::memcpy(&h, handles[static_cast<size_t>(r)].data(), sizeof h);
        void* p = nullptr;
        SHARDLM_CUDA_CHECK(cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess));
        base = static_cast<char*>(p);
        opened.push_back(base);
      }
      peers.data[r] = reinterpret_cast<float*>(base);
      peers.signal[r] = reinterpret_cast<uint32_t*>(base + capacity * sizeof(float));
    }
  }

  void release() {
    for (char* p : opened) cudaIpcCloseMemHandle(p);
    opened.clear();
    cudaFree(mine);
    cudaFree(counters);
    cudaFreeHost(error);
    mine = nullptr;
    counters = nullptr;
    error = nullptr;
  }
};

IpcAllReduce::IpcAllReduce(int rank, int world, int device, size_t capacity_floats,
                           std::chrono::milliseconds timeout, const Exchange& exchange)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (world < 1 || world > kIpcMaxRanks || rank < 0 || rank >= world)
    fail("the IPC all-reduce takes 1 to {} ranks (asked for rank {} of {})", kIpcMaxRanks, rank,
         world);
  m.rank = rank;
  m.world = world;
  m.device = device;
  m.capacity = (capacity_floats + 3) / 4 * 4;  // the signal words stay 16-byte aligned
  m.timeout_ns = static_cast<uint64_t>(timeout.count()) * 1000000ull;
  const std::vector<std::string> handles = exchange(m.make_own());
  if (handles.size() != static_cast<size_t>(world))
    fail("the IPC all-reduce: the exchange gave {} handles for {} ranks", handles.size(), world);
  try {
    m.open_peers(handles);
  } catch (...) {
    m.release();
    throw;
  }
}

IpcAllReduce::~IpcAllReduce() {
  impl_->release();
}

size_t IpcAllReduce::capacity_floats() const {
  return impl_->capacity;
}

const char* IpcAllReduce::algorithm(size_t n) const {
  return impl_->world <= 2 || n * sizeof(float) <= kOneShotMaxBytes ? "one-shot" : "two-shot";
}

void IpcAllReduce::all_reduce_sum(float* data, size_t n, void* stream) {
  Impl& m = *impl_;
  if (n > m.capacity)
    fail("internal: the IPC all-reduce holds {} floats, asked for {}", m.capacity, n);
  if (failed()) fail("the IPC all-reduce already failed: a peer did not arrive in time");
  const IpcAlgo algo = std::strcmp(algorithm(n), "one-shot") == 0 ? IpcAlgo::kOneShot
                                                                  : IpcAlgo::kTwoShot;
  ipc_all_reduce(m.peers, m.rank, m.world, data, n, algo, m.counters, m.timeout_ns, m.error,
                 static_cast<cudaStream_t>(stream));
}

bool IpcAllReduce::failed() const {
  return *reinterpret_cast<volatile int*>(impl_->error) != 0;
}

}  // namespace shardlm::cuda
