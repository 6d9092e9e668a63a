// What a device (NCCL) communicator is asked to be: its group, its place in it, its deadlines.
// Here, below the backends, so that backend/cuda's NCCL communicator can take it without
// including the parallel layer that makes it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace shardlm::comm {

struct DeviceCommOptions {
  std::string name;    // the group, for messages: "the TP group of stage 1"
  std::string prefix;  // store key prefix of its NCCL unique id (unique per group)
  int rank = 0;        // in the group
  int size = 1;
  std::vector<int> world_ranks;  // the group's world ranks, in group rank order (messages)
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds op_timeout{std::chrono::seconds(10)};
  // A TP group: small all-reduces may go through CUDA IPC between the GPUs of one host
  // (backend/cuda/ipc_communicator.h) when every rank can map every other's memory.
  bool ipc_all_reduce = false;
};

}  // namespace shardlm::comm
