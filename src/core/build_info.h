// What build this binary is: shardlm's version and the git commit it was built from. Ranks of a
// group compare build_id() in the handshake, so builds of different commits do not mix.
#pragma once

#include <string>

namespace shardlm {

// "0.1.0 (commit 1a2b3c4d5e6f)", "... (commit 1a2b3c4d5e6f-dirty)" or "... (commit unknown)".
std::string build_id();
// The commit alone ("unknown" outside a git checkout).
std::string build_commit();

}  // namespace shardlm
