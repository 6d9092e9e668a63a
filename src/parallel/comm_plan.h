// Which communicator carries each exchange of a TP x PP group: the TP group of every pipeline
// stage and every pipeline link (stage s -> s + 1 at one tp rank) moves device memory through
// NCCL when every rank in it runs on a GPU of its own, and otherwise goes through the host-staged
// Gloo path (activations copied to host memory, carried by Gloo, copied back). --dist-backend
// overrides the choice: gloo always stages through the host; nccl makes a group whose ranks share
// a GPU or run on the CPU fail at start-up with a message saying which. The master makes the plan
// from every rank's hello and publishes it; every rank connects what it says.
#pragma once

#include <string>
#include <vector>

#include "parallel/parallel_config.h"

namespace shardlm::parallel {

enum class DistBackend { kAuto, kNccl, kGloo };

// "auto" (or ""), "nccl", "gloo"; throws Error naming the flag otherwise.
DistBackend parse_dist_backend(const std::string& text);

// What the master knows of each world rank (from its hello).
struct RankDevice {
  std::string host;
  std::string device;  // Backend::device_id(); "" on the CPU
};

struct CommPlan {
  static constexpr int kVersion = 1;
  int tp = 1;
  int pp = 1;
  std::vector<bool> tp_nccl;    // [stage]: that stage's TP group (false when tp = 1)
  std::vector<bool> link_nccl;  // [stage * tp + tp_rank] for stages 0..pp-2: link to stage + 1

  bool tp_group_nccl(int stage) const { return tp_nccl[static_cast<size_t>(stage)]; }
  bool link_to_next_nccl(int stage, int tp_rank) const {
    return link_nccl[static_cast<size_t>(stage * tp + tp_rank)];
  }
  bool any_nccl() const;
  // "TP groups: nccl, nccl; pipeline links: gloo (host-staged)" for the start-up log.
  std::string describe() const;
  std::string to_json() const;
  // Throws Error on another version or a plan that does not fit tp x pp.
  static CommPlan from_json(const std::string& text);
};

// Whether NCCL carries the group of `ranks` (world ranks, indexes into `devices`) named `what`
// ("the TP group of stage 1"). auto: when NCCL is available and every rank has a device and no two
// share one. gloo: never. nccl: always, and throws Error naming the ranks that run on the CPU or
// share a GPU, or saying that this build has no NCCL.
bool choose_nccl(DistBackend backend, const std::vector<int>& ranks,
                 const std::vector<RankDevice>& devices, const std::string& what,
                 bool nccl_available);

// The plan for every TP group and link of `cfg`; devices has one entry per world rank.
CommPlan plan_comms(const ParallelConfig& cfg, const std::vector<RankDevice>& devices,
                    DistBackend backend, bool nccl_available);

}  // namespace shardlm::parallel
