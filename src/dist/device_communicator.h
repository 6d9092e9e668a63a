// Communicators over device memory (NCCL), made without any CUDA header: the only code outside
// backend/cuda/ that knows NCCL exists. In a build without CUDA nccl_available() is false and
// make_nccl_communicator throws an Error saying so.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "dist/communicator.h"
#include "dist/store.h"

namespace shardlm::dist {

// Whether this build has the CUDA backend and NCCL.
bool nccl_available();

struct DeviceCommOptions {
  std::string name;    // the group, for messages: "the TP group of stage 1"
  std::string prefix;  // store key prefix of its NCCL unique id (unique per group)
  int rank = 0;        // in the group
  int size = 1;
  std::vector<int> world_ranks;  // the group's world ranks, in group rank order (messages)
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds op_timeout{std::chrono::seconds(10)};
};

// An NCCL communicator on `backend`'s GPU and stream (backend must be the CUDA backend). Rank 0
// of the group makes the NCCL unique id and publishes it through `store`; the others read it.
// Connecting fails with an Error naming the group and its ranks instead of hanging past
// connect_timeout. broadcast, gather and barrier (host memory) go through `host`, a host
// communicator over the same ranks in the same order; null when the group needs none of them
// (they then throw). Throws Error in a build without NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(StoreClient& store,
                                                     const DeviceCommOptions& options,
                                                     Backend& backend,
                                                     std::unique_ptr<Communicator> host);

}  // namespace shardlm::dist
