// ProcessMark from /proc: the pid namespace's inode and the stat line's state and start time.
#include "comm/process_mark.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace shardlm::comm {

namespace {

// Read once: a waiting rank asks for it at every peer check. 0 when /proc cannot be read.
uint64_t own_pid_namespace() {
  static const uint64_t ns = [] {
    struct stat st {};
    return stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : uint64_t{0};
  }();
  return ns;
}

struct StatLine {
  bool read = false;  // false: no such process (or /proc unreadable)
  char state = '?';
  uint64_t start_ticks = 0;
};

// /proc/<pid>/stat: "pid (comm) state ppid ...", start time the 22nd field; comm may hold spaces
// and parentheses, so the fields are counted from the last ')'.
StatLine read_stat(int32_t pid) {
  StatLine line;
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return line;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (!p || p[1] != ' ') return line;
  p += 2;
  line.state = *p;
  for (int field = 3; field < 22 && p; ++field) {  // p is at field 3 (state)
    p = std::strchr(p, ' ');
    if (p) ++p;
  }
  if (!p) return line;
  line.start_ticks = std::strtoull(p, nullptr, 10);
  line.read = true;
  return line;
}

}  // namespace

ProcessMark this_process_mark() {
  ProcessMark mark;
  const StatLine self = read_stat(static_cast<int32_t>(getpid()));
  const uint64_t ns = own_pid_namespace();
  if (!self.read || ns == 0) return mark;
  mark.pid = static_cast<int32_t>(getpid());
  mark.start_ticks = self.start_ticks;
  mark.pid_ns = ns;
  return mark;
}

bool process_ended(const ProcessMark& mark) {
  // Another namespace, or no /proc here (own namespace 0): cannot tell.
  if (mark.pid <= 0 || mark.pid_ns == 0 || mark.pid_ns != own_pid_namespace()) return false;
  const StatLine now = read_stat(mark.pid);
  if (!now.read) return true;
  return now.state == 'Z' || now.state == 'X' || now.start_ticks != mark.start_ticks;
}

}  // namespace shardlm::comm
