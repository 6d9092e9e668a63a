// Who a process is, in a form another process on the same host can check without a connection:
// its pid, its pid namespace and the time it started (so a reused pid is not mistaken for it).
// The shared-memory all-reduce keeps one per rank in its segment, so a rank waiting at a barrier
// learns within a moment that a peer exited, instead of only after the step timeout.
#pragma once

#include <cstdint>

namespace shardlm::comm {

struct ProcessMark {
  int32_t pid = 0;  // 0: no mark
  uint32_t reserved = 0;
  uint64_t start_ticks = 0;  // /proc/<pid>/stat field 22 (clock ticks after boot)
  uint64_t pid_ns = 0;       // inode of /proc/self/ns/pid
};

// This process's mark; pid 0 when /proc cannot be read (then nobody checks it).
ProcessMark this_process_mark();

// True only when certain that the marked process has ended: it is in this process's pid namespace
// and its /proc entry is gone, is a zombie, or belongs to a process started at another time. A
// mark from another pid namespace (a container sharing /dev/shm), an empty mark or an unreadable
// /proc say false.
bool process_ended(const ProcessMark& mark);

}  // namespace shardlm::comm
