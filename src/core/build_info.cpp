// build_id from the generated build_id.h (cmake/build_id.cmake) and SHARDLM_VERSION.
#include "core/build_info.h"

#include "build_id.h"

namespace shardlm {

std::string build_commit() { return SHARDLM_COMMIT; }

std::string build_id() { return std::string(SHARDLM_VERSION) + " (commit " + SHARDLM_COMMIT + ")"; }

}  // namespace shardlm
