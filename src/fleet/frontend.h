// `shardlm frontend`: the OpenAI API in front of the workers registered in etcd. It lists their
// models, picks a worker per request (round-robin, random, or KV-aware from the workers' NATS
// events: fleet/router.h), relays the request and streams the answer back chunk by chunk, routes
// around a worker that refuses the connection (or dies before its first output), ends a stream
// cut mid-way with an error event and [DONE], and reports itself degraded in /health and /metrics
// when etcd or NATS is unreachable while it keeps serving with its last view.
#pragma once

#include <set>
#include <string>

#include "fleet/router.h"
#include "server/http_server.h"

namespace shardlm::fleet {

struct FrontendArgs {
  server::HttpOptions http;
  std::string etcd_endpoints;
  std::string nats_server;  // empty: no KV events (kv mode then uses its own predictions only)
  RouterMode mode = RouterMode::kRoundRobin;
  KvRouterWeights weights;
  std::string model;                     // model file for the tokenizer (kv mode)
  std::set<std::string> allowed_models;  // empty: any registered model
  double poll_interval = 0.5;            // seconds between etcd polls
  double down_for = 5;                   // seconds a refusing worker is left out
  int max_attempts = 3;                  // workers tried per request before its first output
  double prefill_timeout = 60;           // seconds a disaggregated prefill may take
  // Times a stream may move to another worker when its worker dies after its first output
  // (fleet/stream_migration.h); 0: it ends with an error event and [DONE].
  int migration_limit = 0;
};

// Blocks until SIGINT/SIGTERM; returns the exit status. Throws Error when start-up fails.
int run_frontend(const FrontendArgs& args);

}  // namespace shardlm::fleet
