// exec_ray_executor: this command line, handed to the Python Ray executor.
#include "app/ray_driver.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"

namespace shardlm::app {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < all.size();) {
    const size_t end = std::min(all.find('\0', start), all.size());
    args.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  if (args.empty()) fail("cannot read this process's command line from /proc/self/cmdline");
  return args;
}

// The serve arguments after "serve", without --distributed-executor-backend (either spelling,
// "--flag VALUE" or "--flag=VALUE").
std::vector<std::string> serve_arguments(const std::vector<std::string>& all) {
  std::vector<std::string> out;
  bool after_serve = false;
  for (size_t i = 1; i < all.size(); ++i) {
    const std::string& a = all[i];
    if (!after_serve) {
      after_serve = a == "serve";
      continue;
    }
    const bool flag = a.rfind("--distributed-executor-backend", 0) == 0 ||
                      a.rfind("--distributed_executor_backend", 0) == 0;
    if (!flag) {
      out.push_back(a);
    } else if (a.find('=') == std::string::npos) {
      ++i;  // its value
    }
  }
  return out;
}

// Where the shardlm package is when it is not installed: build/python beside a build's binary, or
// the site-packages two levels above a wheel's shardlm/bin/shardlm.
void add_package_to_pythonpath(const fs::path& binary) {
  std::string path;
  for (const fs::path& dir : {binary.parent_path() / "python",
                              binary.parent_path().parent_path().parent_path()}) {
    if (fs::exists(dir / "shardlm" / "ray_executor.py")) path = dir.string();
  }
  if (path.empty()) return;
  const char* old = std::getenv("PYTHONPATH");
  const std::string value = old && *old ? path + ":" + old : path;
  ::setenv("PYTHONPATH", value.c_str(), 1);
}

}  // namespace

void exec_ray_executor() {
  const fs::path binary = fs::read_symlink("/proc/self/exe");
  add_package_to_pythonpath(binary);
  const char* env_python = std::getenv("SHARDLM_PYTHON");
  const std::string python = env_python && *env_python ? env_python : "python3";
  std::vector<std::string> args = {python, "-m", "shardlm.ray_executor", "--binary",
                                   binary.string()};
  for (std::string& a : serve_arguments(own_arguments())) args.push_back(std::move(a));
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(python.c_str(), argv.data());
  fail("--distributed-executor-backend ray: cannot start {} ({}); install Python 3 or set "
       "SHARDLM_PYTHON to an interpreter that has the ray and shardlm packages",
       python, std::strerror(errno));
}

}  // namespace shardlm::app
