// supervise_local_ranks: spawn the local ranks, forward signals, stop the rest on a failure.
#include "parallel/supervisor.h"

#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "backend/make_backend.h"
#include "core/error.h"
#include "core/shutdown_signals.h"
#include "parallel/launch_env.h"

extern char** environ;

namespace shardlm::parallel {

namespace {

// The GPU a local rank uses when the node has several: the (local_rank mod n)-th of
// CUDA_VISIBLE_DEVICES's list, or of the n GPUs this process sees; "" to leave it alone.
std::string gpu_for(int local_rank, int gpus) {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  std::vector<std::string> list;
  if (visible && *visible) {
    for (std::string_view v = visible; !v.empty();) {
      const size_t comma = v.find(',');
      if (comma != 0) list.emplace_back(v.substr(0, comma));  // "0,,1": no empty entry
      v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    }
  } else {
    for (int i = 0; i < gpus; ++i) list.push_back(std::to_string(i));
  }
  if (list.size() <= 1) return "";
  return list[static_cast<size_t>(local_rank) % list.size()];
}

// The environment with SHARDLM_LOCAL_RANK=local_rank (replacing any inherited one) and, on a
// node with several GPUs, CUDA_VISIBLE_DEVICES narrowed to this rank's one.
std::vector<std::string> child_environment(int local_rank, int gpus) {
  std::vector<std::string> env;
  const std::string key = std::string(kLocalRankVariable) + "=";
  const std::string gpu = gpu_for(local_rank, gpus);
  const std::string visible = "CUDA_VISIBLE_DEVICES=";
  for (char** e = environ; *e; ++e) {
    const std::string_view v(*e);
    if (v.substr(0, key.size()) == key) continue;
    if (v.substr(0, std::strlen(kSupervisorPidVariable)) == kSupervisorPidVariable) continue;
    if (!gpu.empty() && v.substr(0, visible.size()) == visible) continue;
    env.emplace_back(*e);
  }
  env.push_back(key + std::to_string(local_rank));
  env.push_back(std::string(kSupervisorPidVariable) + "=" + std::to_string(::getpid()));
  if (!gpu.empty()) env.push_back(visible + gpu);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

pid_t spawn_child(std::vector<std::string> args, int local_rank, int gpus) {
  auto env = child_environment(local_rank, gpus);
  auto argv = pointers(args), envp = pointers(env);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // the children handle their own signals
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (rc != 0) fail("could not start local rank {}: {}", local_rank, std::strerror(rc));
  return pid;
}

struct Child {
  pid_t pid = 0;
  bool running = true;
  int status = 0;  // exit status, or 128 + signal
  int restarts = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// A rank that fails sooner than this after its start failed at start-up (a refused layout, a
// group that did not form): starting it again would fail the same way.
constexpr auto kServedLongEnough = std::chrono::seconds(10);

// A worker rank that dies is started again this many times: the master re-forms the group with
// it (healing_runner.h), so a node heals without its operator.
constexpr int kMaxRestarts = 3;

class Supervisor {
 public:
  explicit Supervisor(const SupervisorOptions& o) : o_(o) {}

  int run() {
    args_ = own_command_line();
    gpus_ = cuda_device_count();
    for (int i = 0; i < o_.local_world_size; ++i) {
      children_.push_back({spawn_child(args_, i, gpus_)});
    }
    spdlog::info("supervising {} local ranks (pids {})", children_.size(), pid_list());
    while (running() > 0) {
      const int sig = shutdown_signals::wait(std::chrono::milliseconds(100));
      if (sig != 0) on_shutdown_signal(sig);
      reap();
      if (stopping_ && !killed_ && std::chrono::steady_clock::now() > kill_at_) {
        spdlog::error("local rank(s) still running {:.0f} s after the stop began: killing pids {}",
                      o_.grace_seconds, pid_list(true));
        kill_all(SIGKILL);
        killed_ = true;
      }
    }
    return verdict();
  }

 private:
  int running() const {
    int n = 0;
    for (const Child& c : children_) n += c.running;
    return n;
  }

  std::string pid_list(bool running_only = false) const {
    std::string s;
    for (const Child& c : children_) {
      if (c.running || !running_only) s += (s.empty() ? "" : ", ") + std::to_string(c.pid);
    }
    return s;
  }

  // Every signal goes on to the ranks: on node 0 to the API server alone (it drains, then ends the
  // group, which ends every worker), elsewhere to every rank (a worker waits for the master's
  // end of the group; see run_worker_node). The ranks tell a repeat from a new request.
  void on_shutdown_signal(int sig) {
    if (!shutdown_requested_) {
      spdlog::info("{}: passing it on to {}", shutdown_signals::name(sig),
                   o_.master_node ? "the API server (local rank 0)" : "every local rank");
    }
    shutdown_requested_ = true;
    if (o_.master_node) {
      if (children_[0].running) ::kill(children_[0].pid, sig);
    } else {
      kill_all(sig);
    }
    begin_stopping();
  }

  void begin_stopping() {
    if (stopping_) return;
    stopping_ = true;
    kill_at_ = std::chrono::steady_clock::now() +
               std::chrono::milliseconds(static_cast<int64_t>(o_.grace_seconds * 1000));
  }

  void kill_all(int sig) {
    for (const Child& c : children_) {
      if (c.running) ::kill(c.pid, sig);
    }
  }

  void reap() {
    for (size_t i = 0; i < children_.size(); ++i) {
      Child& c = children_[i];
      int st = 0;
      if (!c.running || waitpid(c.pid, &st, WNOHANG) != c.pid) continue;
      c.running = false;
      c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (c.status == 0) {
        // The master ended the group, which ends every rank in it; one that is not in it (a
        // rank started again while the master shut down) would wait for it until --dist-timeout.
        if (o_.master_node && i == 0 && running() > 0 && !stopping_) {
          spdlog::info(
              "the API server (local rank 0) has ended; stopping the node's other ranks "
              "(SIGTERM, SIGKILL after {:.0f} s)",
              o_.grace_seconds);
          kill_all(SIGTERM);
          begin_stopping();
          master_ended_ = true;
        }
        continue;
      }
      if (master_ended_ && c.status != 128 + SIGKILL) {  // stopped by us, after a clean end
        spdlog::info("local rank {} (pid {}) ended with status {} after the API server", i, c.pid,
                     c.status);
        continue;
      }
      if (first_failure_ < 0) first_failure_ = static_cast<int>(i);
      if (shutdown_requested_) {
        spdlog::warn("local rank {} (pid {}) ended with status {} during the shutdown", i, c.pid,
                     c.status);
      } else if (o_.master_node && i == 0) {
        spdlog::error(
            "the API server (local rank 0, pid {}) exited with status {}; stopping the "
            "node's other ranks",
            c.pid, c.status);
        kill_all(SIGTERM);
        begin_stopping();
      } else if (c.restarts < kMaxRestarts && !stopping_ &&
                 std::chrono::steady_clock::now() - c.started > kServedLongEnough) {
        // The same as a remote rank's death (the master names it in /health and re-forms the
        // group when it is back), except that here the supervisor can bring it back.
        ++c.restarts;
        spdlog::error(
            "local rank {} (pid {}) exited with status {}; starting it again ({} of {}) "
            "so that the group re-forms",
            i, c.pid, c.status, c.restarts, kMaxRestarts);
        c.pid = spawn_child(args_, static_cast<int>(i), gpus_);
        c.running = true;
        c.started = std::chrono::steady_clock::now();
        if (first_failure_ == static_cast<int>(i)) first_failure_ = -1;
      } else {
        spdlog::error(
            "local rank {} (pid {}) exited with status {}; the group is broken until it "
            "is started again (the master's /health names it)",
            i, c.pid, c.status);
      }
    }
  }

  // 0 when every rank exited 0; else the first failing rank's status (a rank that had to be
  // killed after the shutdown's grace period counts as failing: 137).
  int verdict() const {
    return first_failure_ < 0 ? 0 : children_[static_cast<size_t>(first_failure_)].status;
  }

  SupervisorOptions o_;
  std::vector<std::string> args_;
  int gpus_ = 0;
  std::vector<Child> children_;
  bool shutdown_requested_ = false;
  bool stopping_ = false;
  bool killed_ = false;
  bool master_ended_ = false;  // the API server exited 0 and the others were told to stop
  int first_failure_ = -1;
  std::chrono::steady_clock::time_point kill_at_;
};

}  // namespace

std::vector<std::string> own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < all.size();) {
    const size_t end = all.find('\0', start);
    args.push_back(all.substr(start, end - start));
    start = end == std::string::npos ? all.size() : end + 1;
  }
  if (args.empty()) fail("cannot read this process's command line from /proc/self/cmdline");
  return args;
}

void follow_supervisor() {
  const char* pid = std::getenv(kSupervisorPidVariable);
  if (pid == nullptr) return;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (supervisor_gone()) fail("this rank's supervisor (pid {}) is gone; not starting", pid);
}

void die_with_launcher() {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
}

bool supervisor_gone() {
  const char* pid = std::getenv(kSupervisorPidVariable);
  return pid != nullptr && std::to_string(::getppid()) != pid;
}

int supervise_local_ranks(const SupervisorOptions& options) {
  return Supervisor(options).run();
}

}  // namespace shardlm::parallel
