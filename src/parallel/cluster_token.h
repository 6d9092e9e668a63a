// The cluster token for a group that spans hosts. Without one, anyone who reaches the rendezvous
// port could read every key and forge a rank's hello, so a group whose master is not on loopback
// always has one:
//   --cluster-token / SHARDLM_CLUSTER_TOKEN   the operator's, used as given
//   mpirun                                    its per-job secret (OMPI_MCA_orte_precondition_
//                                             transports), which every rank of the job shares
//   nodes started by hand (flags, --ips)      node 0 generates one and prints the command the
//                                             other nodes run with it; they are refused without
//   srun, rtp-llm                             no shared secret to take: a warning says to export
//                                             SHARDLM_CLUSTER_TOKEN before the launch
#pragma once

#include <string>

#include "parallel/launch_env.h"

namespace shardlm::parallel {

// True when the master's rendezvous address is not a loopback one.
bool spans_hosts(const LaunchInfo& info);

// Fills flags.cluster_token where the table above says so (and exports SHARDLM_CLUSTER_TOKEN so
// that a node's supervised ranks share a generated one). Logs what it did.
void settle_cluster_token(const LaunchInfo& info, LaunchFlags& flags);

}  // namespace shardlm::parallel
