// The node lists launchers hand to every process: SLURM's compressed host lists
// (SLURM_JOB_NODELIST="node[01-03,07],gpu5") and task counts per node
// (SLURM_TASKS_PER_NODE="2(x3),1"), and rtp-llm's DISTRIBUTE_CONFIG_FILE.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardlm::parallel {

// "node[01-03,07],gpu5,rack[1-2]-n[1-2]" -> node01 node02 node03 node07 gpu5 rack1-n1 rack1-n2
// rack2-n1 rack2-n2, in that order. A range keeps the zero padding of its lower bound. Throws
// Error naming the list on unbalanced or nested brackets, empty or backward ranges, non-digits.
std::vector<std::string> expand_node_list(std::string_view list);

// "2(x3),1" -> 2 2 2 1: one count per node. Throws Error naming the list when malformed.
std::vector<int> expand_tasks_per_node(std::string_view list);

// One node of rtp-llm's DISTRIBUTE_CONFIG_FILE.
struct ListedNode {
  std::string ip;
  std::optional<int> port;  // rtp-llm: absent = the master's port
};

// Reads rtp-llm's DISTRIBUTE_CONFIG_FILE, a JSON object of "NAME_partN": {"name": "NAME_partN",
// "ip": ..., "port": ...} with one entry per node; returns the nodes in part order, part0 (the
// master) first. Throws Error naming the file and the entry when it cannot be read, is not such
// an object, has a key without the partN suffix, a "name" unlike its key, no "ip", a port outside
// 1-65535, or parts that do not run 0..n-1.
std::vector<ListedNode> read_distribute_config(const std::string& path);

}  // namespace shardlm::parallel
