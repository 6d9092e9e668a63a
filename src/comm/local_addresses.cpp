// Interface addresses via getifaddrs, host names via gethostname.
#include "comm/local_addresses.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>

namespace shardlm::comm {

namespace {

void add_unique(std::vector<std::string>& list, std::string value) {
  if (!value.empty() && std::find(list.begin(), list.end(), value) == list.end()) {
    list.push_back(std::move(value));
  }
}

// The text form of an interface address; "" for other families.
std::string address_text(const sockaddr* address) {
  char buffer[INET6_ADDRSTRLEN] = {0};
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    if (inet_ntop(AF_INET, &in->sin_addr, buffer, sizeof buffer)) return buffer;
  } else if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, buffer, sizeof buffer)) return buffer;
  }
  return "";
}

}  // namespace

std::vector<std::string> interface_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr != nullptr) add_unique(out, address_text(a->ifa_addr));
  }
  freeifaddrs(list);
  return out;
}

std::vector<std::string> host_names() {
  std::vector<std::string> out;
  char name[HOST_NAME_MAX + 1] = {0};
  if (gethostname(name, sizeof name - 1) != 0) return out;
  const std::string full(name);
  add_unique(out, full);
  add_unique(out, full.substr(0, full.find('.')));
  return out;
}

std::vector<std::string> machine_identities() {
  std::vector<std::string> out = interface_addresses();
  for (auto& name : host_names()) add_unique(out, std::move(name));
  return out;
}

std::string canonical_address(std::string_view text) {
  std::string bare(text);
  if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  bare = bare.substr(0, bare.find('%'));
  char buffer[INET6_ADDRSTRLEN] = {0};
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, bare.c_str(), &v4) == 1) {
    return inet_ntop(AF_INET, &v4, buffer, sizeof buffer);
  }
  if (inet_pton(AF_INET6, bare.c_str(), &v6) == 1) {
    return inet_ntop(AF_INET6, &v6, buffer, sizeof buffer);
  }
  std::string name(text);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

}  // namespace shardlm::comm
