// ReplicaProcess: spawn, output relay, exit status (replica_process.h).
#include "parallel/replica_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "backend/make_backend.h"
#include "core/error.h"
#include "parallel/launch_env.h"
#include "parallel/supervisor.h"

extern char** environ;

namespace shardlm::parallel {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Ours, less what would place the replica in another group (a rendezvous address, a local rank)
// or tie it to the wrong supervisor; plus the replica's number, us as its supervisor and its GPUs.
std::vector<std::string> replica_environment(int replica, const std::string& gpus) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string_view v(*e);
    bool drop = false;
    for (const char* name : {"MASTER_ADDR=", "MASTER_PORT=", "SHARDLM_LOCAL_RANK=",
                             "SHARDLM_SUPERVISOR_PID=", "SHARDLM_DP_RANK="}) {
      drop = drop || starts_with(v, name);
    }
    if (!gpus.empty() && starts_with(v, "CUDA_VISIBLE_DEVICES=")) drop = true;
    if (!drop) env.emplace_back(*e);
  }
  env.push_back(std::string(kDpRankVariable) + "=" + std::to_string(replica));
  env.push_back(std::string(kSupervisorPidVariable) + "=" + std::to_string(::getpid()));
  if (!gpus.empty()) env.push_back("CUDA_VISIBLE_DEVICES=" + gpus);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Copies lines from `fd` to our stdout with `prefix` until every writer has closed it.
void relay_output(int fd, std::string prefix) {
  FILE* in = ::fdopen(fd, "r");
  if (in == nullptr) {
    ::close(fd);
    return;
  }
  char* line = nullptr;
  size_t cap = 0;
  while (::getline(&line, &cap, in) >= 0) {
    std::fprintf(stdout, "%s%s", prefix.c_str(), line);
    std::fflush(stdout);
  }
  std::free(line);
  std::fclose(in);
}

}  // namespace

ReplicaProcess::ReplicaProcess(int replica, const std::vector<std::string>& argv_in,
                               const std::string& gpus)
    : replica_(replica) {
  std::vector<std::string> args = argv_in, env = replica_environment(replica, gpus);
  auto argv = pointers(args), envp = pointers(env);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) fail("replica {}: pipe: {}", replica, std::strerror(errno));
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_adddup2(&files, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&files, out[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // the replica handles its own signals
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  const int rc = posix_spawn(&pid_, "/proc/self/exe", &files, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&files);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    fail("could not start data-parallel replica {}: {}", replica, std::strerror(rc));
  }
  relay_ = std::thread(relay_output, out[0], "[replica " + std::to_string(replica) + "] ");
}

ReplicaProcess::~ReplicaProcess() {
  if (!poll()) {  // a programmer error to get here; do not leave it running
    signal(SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  if (relay_.joinable()) relay_.join();
}

std::optional<int> ReplicaProcess::poll() {
  if (status_) return status_;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) != pid_) return std::nullopt;
  status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return status_;
}

void ReplicaProcess::signal(int sig) const {
  if (!status_) ::kill(pid_, sig);
}

std::string describe_exit(int status) {
  if (status <= 128) return "exited with status " + std::to_string(status);
  const int sig = status - 128;
  const char* name = sigabbrev_np(sig);
  return "was killed by signal " + std::to_string(sig) +
         (name ? std::string(" (SIG") + name + ")" : "");
}

std::string replica_gpus(int replica, int ranks_per_replica, int replicas) {
  const int count = cuda_device_count();
  if (count < ranks_per_replica * replicas || count <= 1) return "";
  std::vector<std::string> list;
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible && *visible) {
    for (std::string_view v = visible; !v.empty();) {
      const size_t comma = v.find(',');
      if (comma != 0) list.emplace_back(v.substr(0, comma));
      v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    }
  } else {
    for (int i = 0; i < count; ++i) list.push_back(std::to_string(i));
  }
  if (static_cast<int>(list.size()) < ranks_per_replica * replicas) return "";
  std::string out;
  for (int i = replica * ranks_per_replica; i < (replica + 1) * ranks_per_replica; ++i) {
    out += (out.empty() ? "" : ",") + list[static_cast<size_t>(i)];
  }
  return out;
}

}  // namespace shardlm::parallel
