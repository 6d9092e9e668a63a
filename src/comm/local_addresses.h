// This machine's network identities, for launch modes that find a node's rank by its own address
// (`--ips`): every interface's IPv4 and IPv6 address and the host's names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shardlm::comm {

// The address of every configured interface (getifaddrs), loopback included, in canonical text
// form ("10.0.0.1", "fe80::1"; no IPv6 zone suffix), without duplicates. Empty if the interfaces
// cannot be listed.
std::vector<std::string> interface_addresses();

// This host's name (gethostname) and, when it differs, its short name (up to the first dot).
std::vector<std::string> host_names();

// The addresses and names a peer list may use for this machine: interface_addresses() then
// host_names().
std::vector<std::string> machine_identities();

// `text` in the canonical form inet_ntop writes when it is an IPv4 or IPv6 literal (so "::0:1"
// and "::1" compare equal; an IPv6 zone "%eth0" and surrounding brackets are dropped); otherwise
// `text` lower-cased (a host name; DNS names compare without case).
std::string canonical_address(std::string_view text);

}  // namespace shardlm::comm
