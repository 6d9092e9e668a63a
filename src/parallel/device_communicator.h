// Communicators over device memory (NCCL), made without any CUDA header: the only code outside
// backend/cuda/ that knows NCCL exists. In a build without CUDA nccl_available() is false and
// make_nccl_communicator throws an Error saying so.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "comm/communicator.h"
#include "comm/device_comm_options.h"
#include "comm/store.h"

namespace shardlm::parallel {

// Whether this build has the CUDA backend and NCCL.
bool nccl_available();

// An NCCL communicator on `backend`'s GPU and stream (backend must be the CUDA backend). Rank 0
// of the group makes the NCCL unique id and publishes it through `store`; the others read it.
// Connecting fails with an Error naming the group and its ranks instead of hanging past
// connect_timeout. broadcast, gather and barrier (host memory) go through `host`, a host
// communicator over the same ranks in the same order; null when the group needs none of them
// (they then throw). Throws Error in a build without NCCL.
std::unique_ptr<comm::Communicator> make_nccl_communicator(
    comm::StoreClient& store, const comm::DeviceCommOptions& options, Backend& backend,
    std::unique_ptr<comm::Communicator> host);

}  // namespace shardlm::parallel
