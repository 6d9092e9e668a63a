// build_id from the generated build_id.h (cmake/build_id.cmake) and SHARDLM_VERSION.
#include "core/build_info.h"

#include "build_id.h"

namespace shardlm {

namespace {

// Read through a volatile pointer so the text stays one string in the binary instead of being
// folded into immediate stores (a test patches it to make "a build of another commit").
const char kCommit[] = SHARDLM_COMMIT;
const char* volatile commit_text = kCommit;

}  // namespace

std::string build_commit() { return commit_text; }

std::string build_id() { return std::string(SHARDLM_VERSION) + " (commit " + build_commit() + ")"; }

}  // namespace shardlm
