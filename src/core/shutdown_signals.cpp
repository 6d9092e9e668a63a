// The self-pipe behind shutdown_signals: the handler writes one byte (the signal number).
#include "core/shutdown_signals.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <thread>

namespace shardlm::shutdown_signals {

namespace {

int pipe_fds[2] = {-1, -1};  // written by the handler only after install() set it up
std::atomic<bool> installed{false};

extern "C" void on_signal(int sig) {
  const int saved = errno;  // the interrupted code may be between a call and its errno check
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = ::write(pipe_fds[1], &byte, 1);
  errno = saved;
}

}  // namespace

void install() {
  if (installed.exchange(true)) return;
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return;  // keeps the default action
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int wait(std::chrono::milliseconds timeout) {
  if (pipe_fds[0] < 0) {  // install() could not make its pipe: the default action stays
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(1000)));
    return 0;
  }
  pollfd p{pipe_fds[0], POLLIN, 0};
  const int ms = timeout.count() > 1'000'000'000 ? -1 : static_cast<int>(timeout.count());
  if (::poll(&p, 1, ms) <= 0) return 0;
  unsigned char byte = 0;
  return ::read(pipe_fds[0], &byte, 1) == 1 ? byte : 0;
}

int wait() {
  while (true) {
    if (const int sig = wait(std::chrono::milliseconds(1'000'000'001)); sig != 0) return sig;
  }
}

const char* name(int sig) {
  if (sig == SIGINT) return "SIGINT";
  if (sig == SIGTERM) return "SIGTERM";
  if (sig == SIGUSR1) return "SIGUSR1";
  return "a signal";
}

}  // namespace shardlm::shutdown_signals
