#include "backend/cuda/ipc_communicator.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <cstdlib>
#include <string_view>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace shardlm::cuda {
namespace {

constexpr size_t kDefaultMaxBytes = size_t{8} << 20;

// Every rank's bytes in rank order: one broadcast per rank over the host side of `comm`.
std::vector<std::string> swap_bytes(comm::Communicator& comm, const std::string& mine) {
  std::vector<std::string> all;
  for (int r = 0; r < comm.size(); ++r) {
    std::vector<char> bytes;
    if (r == comm.rank()) bytes.assign(mine.begin(), mine.end());
    comm.broadcast(bytes, r);
    all.emplace_back(bytes.begin(), bytes.end());
  }
  return all;
}

// Rank 0's setting, for the whole group: 0 when off, else the buffer's size in bytes.
size_t group_max_bytes(comm::Communicator& comm) {
  std::string mine;
  if (comm.rank() == 0) {
    const char* on = std::getenv("SHARDLM_CUSTOM_ALLREDUCE");
    const char* max = std::getenv("SHARDLM_CUSTOM_ALLREDUCE_MAX_BYTES");
    size_t bytes = max ? std::strtoull(max, nullptr, 10) : kDefaultMaxBytes;
    if (on && std::string_view(on) == "0") bytes = 0;
    mine = std::to_string(bytes);
  }
  std::vector<char> b(mine.begin(), mine.end());
  comm.broadcast(b, 0);
  return std::strtoull(std::string(b.begin(), b.end()).c_str(), nullptr, 10);
}

// One all-reduce of (rank + 1) * (i % 7 + 1), checked against the exact sum on this rank: "" when
// right, else what went wrong.
std::string self_test(IpcAllReduce& ipc, CudaBackend& backend, int rank, int world) {
  const size_t n = 4099;  // a tail past the 4-element chunks
  std::vector<float> host(n);
  for (size_t i = 0; i < n; ++i) host[i] = static_cast<float>((rank + 1) * (i % 7 + 1));
  float* d = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&d, n * sizeof(float)));
  auto* stream = static_cast<cudaStream_t>(backend.stream());
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(d, host.data(), n * sizeof(float), cudaMemcpyHostToDevice,
                                     stream));
  ipc.all_reduce_sum(d, n, stream);
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(host.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost,
                                     stream));
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaFree(d);
  if (ipc.failed()) return "a peer did not arrive in time";
  const float ranks_sum = static_cast<float>(world * (world + 1) / 2);
  for (size_t i = 0; i < n; ++i) {
    if (host[i] != ranks_sum * static_cast<float>(i % 7 + 1))
      return fmt::format("element {} is {} instead of {}", i, host[i],
                         ranks_sum * static_cast<float>(i % 7 + 1));
  }
  return "";
}

}  // namespace

IpcCommunicator::IpcCommunicator(std::unique_ptr<comm::Communicator> inner,
                                 std::unique_ptr<IpcAllReduce> ipc, CudaBackend& backend,
                                 std::string name)
    : inner_(std::move(inner)), ipc_(std::move(ipc)), backend_(backend), name_(std::move(name)) {}

void IpcCommunicator::all_reduce_sum(float* data, size_t n) {
  if (n > ipc_->capacity_floats()) return inner_->all_reduce_sum(data, n);
  ipc_->all_reduce_sum(data, n, backend_.stream());
}

void IpcCommunicator::check_healthy() {
  inner_->check_healthy();
  if (ipc_->failed())
    fail(
        "{}: an all-reduce between the GPUs of this host gave up waiting for a peer rank (it "
        "died or stopped); the group must be formed again",
        name_);
}

std::unique_ptr<comm::Communicator> with_ipc_all_reduce(std::unique_ptr<comm::Communicator> nccl,
                                                        CudaBackend& backend,
                                                        const comm::DeviceCommOptions& o,
                                                        std::string* how) {
  auto say = [&](std::string line) {
    if (how) *how = std::move(line);
  };
  if (nccl->size() < 2) return nccl;
  const size_t max_bytes = group_max_bytes(*nccl);
  if (max_bytes < 4096) {
    say("NCCL all-reduce (SHARDLM_CUSTOM_ALLREDUCE=0 on the group's first rank)");
    return nccl;
  }
  std::unique_ptr<IpcAllReduce> ipc;
  std::string why;
  try {
    ipc = std::make_unique<IpcAllReduce>(
        nccl->rank(), nccl->size(), backend.device(), max_bytes / sizeof(float), o.op_timeout,
        [&](const std::string& mine) { return swap_bytes(*nccl, mine); });
    why = self_test(*ipc, backend, nccl->rank(), nccl->size());
  } catch (const Error& e) {
    why = e.what();
  }
  // Every rank must agree, or one would wait in a kernel for a peer that took NCCL.
  std::string verdict;
  for (const std::string& w : swap_bytes(*nccl, why)) {
    if (!w.empty() && verdict.empty()) verdict = w;
  }
  if (!verdict.empty()) {
    say(fmt::format("NCCL all-reduce (the IPC all-reduce is not possible here: {})", verdict));
    return nccl;
  }
  say(fmt::format("IPC all-reduce up to {} KiB (one-shot; two-shot above 256 KiB with more than "
                  "2 ranks), NCCL above",
                  max_bytes / 1024));
  return std::make_unique<IpcCommunicator>(std::move(nccl), std::move(ipc), backend, o.name);
}

}  // namespace shardlm::cuda
