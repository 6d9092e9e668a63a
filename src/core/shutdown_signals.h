// SIGINT, SIGTERM and SIGUSR1 as events a thread waits for. install() replaces their default action
// (end the process at once) with a handler that only records the signal on a pipe, so it does
// not matter which thread the kernel picks: library threads started before main (OpenBLAS's
// pool) have the signals unblocked, and under a thread-mask scheme a signal landing there
// killed the process mid-drain. Every process of shardlm calls install() first thing in main.
//
// SIGUSR1 means the same: mpirun forwards it to every rank (it answers SIGINT and SIGTERM itself
// by killing the ranks within two seconds), so `kill -USR1 <mpirun>` is how an mpirun group
// drains.
//
// One global pipe: a signal handler can reach nothing else. Only the handler writes to it.
#pragma once

#include <chrono>

namespace shardlm::shutdown_signals {

// Idempotent. Also ignores SIGPIPE (a client closing its socket must not end the server).
void install();
// The next SIGINT/SIGTERM/SIGUSR1 (its number), or 0 when `timeout` passed first.
int wait(std::chrono::milliseconds timeout);
// The next SIGINT/SIGTERM, however long it takes.
int wait();
// "SIGINT", "SIGTERM", "SIGUSR1" or "a signal".
const char* name(int sig);

}  // namespace shardlm::shutdown_signals
