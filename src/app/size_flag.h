// Memory sizes on the command line: "536870912", "512MiB", "2GiB", "1.5G", "800MB", or "30%" (of
// the memory available now, from /proc/meminfo).
#pragma once

#include <cstddef>
#include <string>

namespace shardlm::app {

// Throws Error naming the flag when the text is not a size.
size_t parse_size(const std::string& text, const char* flag);
size_t available_memory_bytes();

}  // namespace shardlm::app
