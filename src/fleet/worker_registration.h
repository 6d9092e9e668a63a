// Keeps one worker's entry in etcd under a lease with a short TTL: grants the lease, puts the entry,
// sends keep-alives every TTL/3 on its own thread, and registers again (new lease) when the lease
// was lost (etcd restarted, or unreachable for longer than the TTL). Destroying it revokes the
// lease, so the entry disappears at once; a worker that dies disappears when the TTL runs out.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "fleet/etcd_client.h"
#include "fleet/worker_info.h"

namespace shardlm::fleet {

class WorkerRegistration {
 public:
  WorkerRegistration(EtcdClient etcd, WorkerInfo info, int ttl_seconds);
  ~WorkerRegistration();

  bool registered() const;

 private:
  void run();
  void try_register();
  void try_keep_alive();

  EtcdClient etcd_;
  WorkerInfo info_;
  int ttl_;
  int64_t lease_ = 0;
  bool warned_ = false;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace shardlm::fleet
