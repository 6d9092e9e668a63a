// The --device flag: which backend runs the model (resolved by backend/make_backend.h).
#include "app/commands.h"

namespace shardlm::app {

void add_device_flag(CLI::App& cmd, std::string& device) {
  cmd.add_option("--device", device,
                 "cpu or cuda (default: cuda when this build has CUDA and a GPU is visible)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
}

}  // namespace shardlm::app
