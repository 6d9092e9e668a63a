// short_kernel_name: demangling (the C++ ABI's __cxa_demangle) and trimming a kernel's name.
#include "backend/kernel_name.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace shardlm {

namespace {

std::string demangled(std::string_view name) {
  std::string s(name);
  if (s.rfind("_Z", 0) != 0) return s;
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(
      abi::__cxa_demangle(s.c_str(), nullptr, nullptr, &status), std::free);
  return status == 0 && d ? std::string(d.get()) : s;
}

void erase_all(std::string& s, std::string_view what) {
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at)) {
    s.erase(at, what.size());
  }
}

// "A<B<int> >" (the demangler's spelling) as "A<B<int>>".
void close_brackets(std::string& s) {
  for (size_t at = s.find("> >"); at != std::string::npos; at = s.find("> >", at))
    s.erase(at + 1, 1);
}

// Cuts the parameter list: from the first '(' outside the template arguments.
void drop_parameters(std::string& s) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    if (s[i] == '>' && depth > 0) --depth;
    if (s[i] == '(' && depth == 0 && i > 0) {
      s.resize(i);
      return;
    }
  }
}

}  // namespace

std::string short_kernel_name(std::string_view name, size_t max_chars) {
  std::string s = demangled(name);
  // The namespaces first: "(anonymous namespace)" holds a '(' that is no parameter list.
  erase_all(s, "(anonymous namespace)::");
  erase_all(s, "shardlm::cuda::");
  erase_all(s, "shardlm::");
  if (s.rfind("void ", 0) == 0) s.erase(0, 5);  // a kernel's return type
  drop_parameters(s);
  close_brackets(s);
  if (s.size() > max_chars && max_chars >= 3) s = s.substr(0, max_chars - 3) + "...";
  return s;
}

}  // namespace shardlm
