// `shardlm doctor --etcd-endpoints ... --nats-server ...`: checks that etcd and NATS answer, lists
// the workers registered in etcd (and entries a frontend would ignore, with the reason), and
// probes each worker's /health. Exit status 0 when etcd (and NATS, when given) answered.
#pragma once

#include <string>

namespace shardlm::fleet {

int run_fleet_doctor(const std::string& etcd_endpoints, const std::string& nats_server);

}  // namespace shardlm::fleet
