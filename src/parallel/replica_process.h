// One data-parallel replica's process (data_parallel.h): `shardlm serve` started again with the
// replica's command line, its own environment (SHARDLM_DP_RANK, the controller as its supervisor so
// it dies with it, no inherited rendezvous address, its slice of the GPUs), and its output passed
// on line by line with a "[replica N] " prefix, so the controller's log names who said what.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace shardlm::parallel {

inline constexpr const char* kDpRankVariable = "SHARDLM_DP_RANK";

class ReplicaProcess {
 public:
  // Starts /proc/self/exe with `argv`; `gpus` (may be empty) becomes CUDA_VISIBLE_DEVICES. Throws
  // Error when the process cannot start.
  ReplicaProcess(int replica, const std::vector<std::string>& argv, const std::string& gpus);
  ~ReplicaProcess();  // waits for the output relay (the process must have ended)
  ReplicaProcess(const ReplicaProcess&) = delete;
  ReplicaProcess& operator=(const ReplicaProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The exit status (128 + signal when killed) once it has ended; nullopt while it runs.
  std::optional<int> poll();
  void signal(int sig) const;

 private:
  int replica_;
  pid_t pid_ = 0;
  std::optional<int> status_;
  std::thread relay_;  // copies the process's output to ours, prefixed
};

// "exited with status 3" or "was killed by signal 9 (SIGKILL)" for a status from poll().
std::string describe_exit(int status);

// CUDA_VISIBLE_DEVICES for `replica` when the machine has a GPU per rank of every replica: GPUs
// [replica * ranks, (replica + 1) * ranks) of the visible list; "" to leave it alone.
std::string replica_gpus(int replica, int ranks_per_replica, int replicas);

}  // namespace shardlm::parallel
