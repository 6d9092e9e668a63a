// run_worker_node and the master's runner factory.
#include "server/worker_node.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "dist/pp_runner.h"
#include "dist/tp_runner.h"
#include "server/openai/api_error.h"
#include "server/openai/responses.h"

namespace shardlm::server {

namespace {

void add_worker_routes(HttpServer& http, const dist::GroupOptions& g) {
  const std::string master = g.master_host + ":" + std::to_string(g.master_port);
  http.get(
      "/health",
      [g, master](const httplib::Request&, httplib::Response& res) {
        res.set_content(
            to_wire({{"status", "ok"}, {"rank", g.rank}, {"role", "worker"}, {"master", master}}),
            "application/json");
      },
      false);
  auto refuse = [master](const httplib::Request&, httplib::Response&) {
    throw ApiError(421,
                   "this node is a worker rank of a shardlm group; send requests to the "
                   "master node (its --dist-init-addr host, rendezvous " +
                       master + ")");
  };
  for (const char* path : {"/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"}) {
    http.post(path, refuse, false);
  }
  http.get("/v1/models", refuse, false);
}

}  // namespace

std::function<std::unique_ptr<ModelRunner>(const Model&, Backend&, const KvCacheShape&, int64_t)>
group_master_runner(std::shared_ptr<dist::Group> group) {
  return [group](const Model& model, Backend& backend, const KvCacheShape& shape,
                 int64_t max_tokens) -> std::unique_ptr<ModelRunner> {
    group->join(model);
    if (group->options().pp > 1) {
      return std::make_unique<dist::PpMasterRunner>(model, backend, shape, max_tokens,
                                                    group->comm());
    }
    return std::make_unique<dist::TpMasterRunner>(model, backend, shape, max_tokens, group->comm());
  };
}

int run_worker_node(const ServerArgs& args) {
  const dist::GroupOptions& g = *args.group;
  dist::Group group(g);
  auto model = load_model(args.engine.model);
  group.join(*model);
  const ModelConfig& c = model->config;
  const EngineArgs& e = args.engine;
  CpuBackend backend(
      CpuBackendOptions::for_model(c, e.threads, e.max_num_batched_tokens, model_len(e, c)));
  const KvCacheShape shape{c.n_layers, c.kv_dim(), e.block_size, kv_blocks(e, c)};
  HttpServer http(args.http);
  add_worker_routes(http, g);
  const int port = http.bind();
  std::thread http_thread([&] { http.serve(); });
  spdlog::info("worker rank {} of {}: /health on http://{}:{}; requests go to the master", g.rank,
               g.world_size, args.http.host, port);
  int status = 0;
  try {
    if (g.pp > 1) {
      dist::run_pp_worker(*model, backend, shape, e.max_num_batched_tokens, group.comm());
    } else {
      dist::run_tp_worker(*model, backend, shape, e.max_num_batched_tokens, group.comm());
    }
    spdlog::info("the master shut the group down");
  } catch (const std::exception& ex) {
    spdlog::error("worker rank {}: {}; exiting", g.rank, ex.what());
    status = 1;
  }
  http.stop();
  http_thread.join();
  return status;
}

}  // namespace shardlm::server
