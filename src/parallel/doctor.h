// `shardlm doctor`: the pre-flight check of a group, started on every node with the same launch
// flags as `serve`. Every rank reports its host, the address and interface it would use for
// collectives, /dev/shm, its version and model fingerprint; every rank then proves it can open a
// TCP connection to every other rank's collective address (the GLOO/NCCL_SOCKET_IFNAME trap:
// a node that picked an interface the others cannot reach fails here, by name); when all is well
// the group runs a timed all-reduce and a ping-pong from the master to each rank. The master
// prints the whole report with a verdict per node and shares it with every rank; each process
// exits 0 when every node is ready, 1 otherwise. It ends in seconds, or at --dist-timeout when a
// rank never arrives.
#pragma once

#include <chrono>
#include <string>

#include "parallel/group.h"

namespace shardlm::parallel {

struct DoctorOptions {
  GroupOptions group;
  std::string fingerprint;  // this rank's model_fingerprint(); "" skips that check
  std::chrono::milliseconds probe_timeout{2000};
  size_t bandwidth_bytes = size_t{16} << 20;  // all-reduce and ping-pong payload
};

int run_doctor(const DoctorOptions& options);

}  // namespace shardlm::parallel
