// The handshake message every rank publishes at start-up (store key hello/<rank>): who it is,
// where it runs, what it serves. Typed and versioned: the master compares each rank's hello with
// its own and stops the group, naming the field, when they disagree.
//
// Version 2 added `device`, the identity of the accelerator the rank's backend runs on, so the
// master can choose NCCL for groups whose ranks each have a GPU of their own (comm_plan.h).
#pragma once

#include <string>

namespace shardlm::parallel {

struct Hello {
  static constexpr int kVersion = 2;
  int hello_version = kVersion;
  int rank = 0;
  std::string host;     // host name
  std::string address;  // the local address that reaches the master
  int liveness_port = 0;
  std::string version;      // shardlm's build_id(): version and commit
  std::string fingerprint;  // weights_fingerprint().str(): layout/contents
  int tp = 1;
  int pp = 1;
  int world_size = 1;
  bool expert_parallel = false;  // --enable-expert-parallel: every rank must agree
  bool tp_exact = false;         // --tp-exact: every rank must agree (tp_shard.h)
  // Backend::device_id() ("GPU-<uuid> (PCI 0000:1b:00.0)"), "" for a backend on host memory.
  std::string device;
  // The most tokens one step may carry on this rank (--max-num-batched-tokens as its engine
  // resolved it: each rank's default follows its own device); 0 when not told. Optional in the
  // JSON (absent reads 0), so it needs no new version.
  int max_batch_tokens = 0;

  std::string to_json() const;
  // A hello without hello_version is version 1 (before `device`). Throws Error naming the
  // versions when it is not kVersion, and on text that is not a hello.
  static Hello from_json(const std::string& text);
};

// The first field in which two ranks' hellos differ (hello version, shardlm version, model
// fingerprint, tp, pp, world size, the parallel modes), as "field: a vs b", or a step token
// limit of b's below a's (a is the master's: it schedules the steps b must take); "" when they
// agree.
std::string hello_difference(const std::string& a, const std::string& b);

}  // namespace shardlm::parallel
