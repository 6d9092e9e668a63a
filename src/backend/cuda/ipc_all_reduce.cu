// The IPC all-reduce kernels: see ipc_all_reduce.cuh.
#include "backend/cuda/ipc_all_reduce.cuh"

#include <algorithm>

#include "backend/cuda/cuda_check.h"

namespace shardlm::cuda {
namespace {

constexpr int kThreads = 512;

__device__ uint64_t now_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__device__ void store_release(uint32_t* p, uint32_t v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ uint32_t load_acquire(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Signal word of barrier `which` (0 start, 1 middle, 2 end) for block b, written by rank `from`.
__device__ uint32_t* slot(uint32_t* signal, int which, int b, int from) {
  return signal + (static_cast<size_t>(which) * kIpcBlocks + b) * kIpcMaxRanks + from;
}

// Block b of every rank meets here: thread t < world tells rank t that this rank arrived with
// `epoch`, then waits for rank t's word in this rank's area to reach it. False on a timeout.
__device__ bool meet(const IpcPeers& p, int rank, int world, int which, uint32_t epoch,
                     uint64_t deadline, int* error) {
  __shared__ int timed_out;
  if (threadIdx.x == 0) timed_out = 0;
  __syncthreads();  // this block's writes before the flag (release covers them at system scope)
  const int t = static_cast<int>(threadIdx.x);
  if (t < world) {
    store_release(slot(p.signal[t], which, blockIdx.x, rank), epoch);
    const uint32_t* mine = slot(p.signal[rank], which, blockIdx.x, t);
    // Epochs only grow and no rank passes the next barrier of this kind before this one ends.
    while (static_cast<int32_t>(load_acquire(mine) - epoch) < 0) {
      if (now_ns() > deadline) {
        timed_out = 1;
        atomicExch_system(error, 1);
        break;
      }
    }
  }
  __syncthreads();
  return timed_out == 0;
}

// Every block walks [begin, end) the same way in every phase and on every rank: 4-element
// chunks by thread (begin is a multiple of 4 by construction), then the tail element by element.
// So what block b of a rank reads in phase two, block b of its owner wrote in phase one, and the
// per-block barrier orders them. `f(i, count)` handles elements [i, i + count).
template <typename F>
__device__ void walk(size_t begin, size_t end, F f) {
  const size_t tid = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t vec_end = begin + (end - begin) / 4 * 4;
  for (size_t i = begin + tid * 4; i < vec_end; i += stride * 4) f(i, 4);
  for (size_t i = vec_end + tid; i < end; i += stride) f(i, 1);
}

__device__ void store(float* out, size_t i, float4 v, int count, bool aligned) {
  if (count == 4 && aligned) {
    *reinterpret_cast<float4*>(out + i) = v;
    return;
  }
  const float e[4] = {v.x, v.y, v.z, v.w};
  for (int k = 0; k < count; ++k) out[i + k] = e[k];
}

__device__ float4 load(const float* src, size_t i, int count) {
  if (count == 4) return __ldcg(reinterpret_cast<const float4*>(src + i));
  return make_float4(__ldcg(src + i), 0.f, 0.f, 0.f);
}

// out[begin, end) = the ranks' staging buffers added in rank order. `aligned`: out is 16-byte
// aligned (staging buffers always are).
__device__ void sum_range(const IpcPeers& p, int world, float* out, size_t begin, size_t end,
                          bool aligned) {
  walk(begin, end, [&](size_t i, int count) {
    float4 acc = load(p.data[0], i, count);
    for (int r = 1; r < world; ++r) {
      const float4 v = load(p.data[r], i, count);
      acc.x += v.x;
      acc.y += v.y;
      acc.z += v.z;
      acc.w += v.w;
    }
    store(out, i, acc, count, aligned);
  });
}

// dst[begin, end) = src[begin, end), src being a peer's staging buffer.
__device__ void copy_range(const float* src, float* dst, size_t begin, size_t end, bool aligned) {
  walk(begin, end, [&](size_t i, int count) { store(dst, i, load(src, i, count), count, aligned); });
}

// Slice s of n elements split over world ranks, each a multiple of 4 elements but the last.
__device__ void slice_of(size_t n, int world, int s, size_t* begin, size_t* end) {
  const size_t per = ((n + world - 1) / world + 3) / 4 * 4;
  *begin = min(n, per * s);
  *end = min(n, per * (s + 1));
}

__global__ void all_reduce_kernel(IpcPeers p, int rank, int world, float* out, size_t n,
                                  bool two_shot, bool aligned, uint32_t* counters,
                                  uint64_t timeout_ns, int* error) {
  const uint32_t epoch = counters[blockIdx.x] + 1;
  const uint64_t deadline = now_ns() + timeout_ns;
  if (!meet(p, rank, world, 0, epoch, deadline, error)) return;
  if (!two_shot) {
    sum_range(p, world, out, 0, n, aligned);
  } else {
    size_t b, e;
    slice_of(n, world, rank, &b, &e);
    // Own slice summed into own staging buffer: only this rank reads slice `rank` in phase one.
    sum_range(p, world, p.data[rank], b, e, true);
    if (!meet(p, rank, world, 1, epoch, deadline, error)) return;
    for (int s = 0; s < world; ++s) {
      slice_of(n, world, s, &b, &e);
      copy_range(p.data[s], out, b, e, aligned);
    }
  }
  // Nobody refills its staging buffer (the next call) before every rank has read it.
  if (!meet(p, rank, world, 2, epoch, deadline, error)) return;
  if (threadIdx.x == 0) counters[blockIdx.x] = epoch;
}

}  // namespace

void ipc_all_reduce(const IpcPeers& peers, int rank, int world, float* data, size_t n,
                    IpcAlgo algo, uint32_t* counters, uint64_t timeout_ns, int* error,
                    cudaStream_t stream) {
  if (n == 0) return;
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(peers.data[rank], data, n * sizeof(float),
                                     cudaMemcpyDeviceToDevice, stream));
  const bool aligned = reinterpret_cast<uintptr_t>(data) % 16 == 0;
  const size_t per_block = size_t{kThreads} * 4;
  const int blocks = static_cast<int>(std::min<size_t>(kIpcBlocks, (n + per_block - 1) / per_block));
  all_reduce_kernel<<<blocks, kThreads, 0, stream>>>(peers, rank, world, data, n,
                                                     algo == IpcAlgo::kTwoShot, aligned,
                                                     counters, timeout_ns, error);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
