// parse_size.
#include "app/size_flag.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "core/error.h"

namespace shardlm::app {

namespace {

double unit_factor(std::string unit) {
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit.empty() || unit == "b") return 1;
  const char* units = "kmgt";
  for (int i = 0; i < 4; ++i) {
    const std::string u(1, units[i]);
    if (unit == u || unit == u + "ib") return std::pow(1024.0, i + 1);
    if (unit == u + "b") return std::pow(1000.0, i + 1);
  }
  return 0;
}

}  // namespace

size_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  fail("cannot read MemAvailable from /proc/meminfo; give the size in bytes (e.g. 2GiB)");
}

size_t parse_size(const std::string& text, const char* flag) {
  if (!text.empty() && text.back() == '%') {
    char* end = nullptr;
    const double pct = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() - 1 || !(pct > 0 && pct <= 100)) {
      fail("{} '{}': a percentage must be in (0, 100]", flag, text);
    }
    return static_cast<size_t>(static_cast<double>(available_memory_bytes()) * pct / 100);
  }
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  const double factor = unit_factor(std::string(end));
  const double bytes = value * factor;
  if (end == text.c_str() || factor == 0 || !(bytes >= 1) || bytes > 1e18) {
    fail("{} '{}' is not a size; write it like 512MiB, 2GiB or a number of bytes", flag, text);
  }
  return static_cast<size_t>(bytes);
}

}  // namespace shardlm::app
