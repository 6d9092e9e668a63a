// A worker's part in disaggregated prefill/decode (`serve --disaggregation-mode prefill|decode`,
// `--is-prefill-worker`). The frontend drives each request in two calls:
//   1. POST /kv/prefill to a prefill worker with the client's request and a decode worker's KV
//      transfer address: the prefill worker renders and tokenises the prompt as serve does, runs
//      it through its engine (one greedy token, so the whole prompt's K/V is computed and lands in
//      its prefix cache), takes the prompt's full cached blocks (engine/kv_block_transfer.h) and
//      sends them to the decode worker (fleet/kv_transfer_client.h), which stores them in its own
//      prefix cache (fleet/kv_transfer_server.h) and acknowledges. The blocks go out as they are
//      computed: between engine steps, the full blocks of the chunks done so far are sent while
//      the next chunk (--max-num-batched-tokens) computes, one part per step that completed
//      some (SHARDLM_KV_TRANSFER_OVERLAP=0: one transfer after the whole prefill).
//   2. The client's request itself to the decode worker, whose admission attaches those blocks as
//      a prefix-cache hit and computes only the prompt's last partial block before decoding.
// Output is the aggregated worker's: the decode worker samples every token itself, from K/V equal
// to what it would have computed. A transfer that stores fewer blocks (evicted, no room) only
// costs the decode worker that prefill, never correctness.
// Both roles answer GET /kv/stats (transfers, blocks, bytes, refused) for tests and operators.
#pragma once

#include <memory>
#include <string>

#include "server/http_server.h"
#include "server/serving_context.h"

namespace shardlm::fleet {

enum class DisaggregationMode { kAggregated, kPrefill, kDecode };
// "aggregated" (or ""), "prefill", "decode"; throws Error naming the choices.
DisaggregationMode parse_disaggregation_mode(const std::string& text);
const char* disaggregation_mode_name(DisaggregationMode mode);

// The body of POST /kv/prefill.
inline constexpr int kPrefillCallVersion = 1;

// Adds the role's routes (and, for decode, starts the KV transfer listener on host:kv_port, 0 =
// a free port). The handle keeps them alive; kv_port() gives the bound port (decode).
class DisaggregatedWorker {
 public:
  virtual ~DisaggregatedWorker() = default;
  virtual int kv_port() const = 0;
};

std::shared_ptr<DisaggregatedWorker> start_disaggregated_worker(DisaggregationMode mode,
                                                                server::HttpServer& http,
                                                                const server::ServingContext& ctx,
                                                                const std::string& kv_host,
                                                                int kv_port);

}  // namespace shardlm::fleet
