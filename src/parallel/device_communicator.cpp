// make_nccl_communicator: the NCCL communicator of the CUDA backend, or an Error in a build
// without NCCL (SHARDLM_HAS_NCCL: CMake found it next to the CUDA toolkit).
#include "parallel/device_communicator.h"

#include "core/error.h"
#if SHARDLM_HAS_NCCL
#include <spdlog/spdlog.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/ipc_communicator.h"
#include "backend/cuda/nccl_communicator.h"
#endif

namespace shardlm::parallel {

bool nccl_available() {
#if SHARDLM_HAS_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<comm::Communicator> make_nccl_communicator(
    comm::StoreClient& store, const comm::DeviceCommOptions& o, Backend& backend,
    std::unique_ptr<comm::Communicator> host) {
#if SHARDLM_HAS_NCCL
  auto* cuda = dynamic_cast<cuda::CudaBackend*>(&backend);
  if (!cuda) {
    fail(
        "{}: NCCL needs the CUDA backend but this rank runs the {} backend; use --device cuda "
        "or --dist-backend gloo",
        o.name, backend.name());
  }
  auto nccl = std::make_unique<cuda::NcclCommunicator>(store, o, *cuda, std::move(host));
  if (!o.ipc_all_reduce || o.size < 2) return nccl;
  std::string how;
  auto comm = cuda::with_ipc_all_reduce(std::move(nccl), *cuda, o, &how);
  spdlog::info("{}: {}", o.name, how);
  return comm;
#else
  fail("{}: this shardlm was built without NCCL; use --dist-backend gloo", o.name);
#endif
}

}  // namespace shardlm::parallel
