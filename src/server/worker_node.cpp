// run_worker_node and the master's runner factory.
#include "server/worker_node.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>
#include <thread>

#include "engine/rank_runtime.h"
#include "parallel/healing_runner.h"
#include "parallel/shard_runner.h"
#include "server/openai/api_error.h"
#include "server/openai/responses.h"
#include "server/shutdown_watch.h"

namespace shardlm::server {

namespace {

void add_worker_routes(HttpServer& http, const parallel::GroupOptions& g,
                       const parallel::Group& group) {
  const std::string master = g.master_host + ":" + std::to_string(g.master_port);
  http.get(
      "/health",
      [g, master](const httplib::Request&, httplib::Response& res) {
        res.set_content(
            to_wire({{"status", "ok"}, {"rank", g.rank}, {"role", "worker"}, {"master", master}}),
            "application/json");
      },
      false);
  auto refuse = [master, &group](const httplib::Request&, httplib::Response&) {
    const std::string api = group.master_api();
    throw ApiError(421, api.empty() ? "this node is a worker rank of a shardlm group; send "
                                      "requests to the master node (its --dist-init-addr host, "
                                      "rendezvous " +
                                          master + ")"
                                    : "this node is a worker rank of a shardlm group; send "
                                      "requests to the master's API at " +
                                          api);
  };
  for (const char* path : {"/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"}) {
    http.post(path, refuse, false);
  }
  http.get("/v1/models", refuse, false);
}

}  // namespace

std::function<std::unique_ptr<ModelRunner>(const Model&, Backend&, const KvCacheShape&, int64_t)>
group_master_runner(std::shared_ptr<parallel::Group> group) {
  return [group](const Model& model, Backend& backend, const KvCacheShape& shape,
                 int64_t max_tokens) -> std::unique_ptr<ModelRunner> {
    group->join(model, backend);
    auto build = [group, &model, &backend, shape, max_tokens] {
      auto runner = std::make_unique<parallel::ShardMasterRunner>(
          model, backend, shape, max_tokens, group->parallel(), group->comms());
      runner->set_failure_diagnosis(
          [group] { return group->unreachable_ranks(std::chrono::milliseconds(2000)); });
      return runner;
    };
    auto healing = std::make_unique<parallel::HealingRunner>(group, model, backend, build);
    group->set_local_stats([h = healing.get()] { return h->stats(); });
    return healing;
  };
}

namespace {

// Loads the model and makes the backend; a failure is reported to the master first, so the
// group stops at once naming this rank instead of waiting for it.
std::unique_ptr<RankRuntime> load_rank(const ServerArgs& args, parallel::Group& group) {
  try {
    return std::make_unique<RankRuntime>(args.engine, RankRuntime::Placement::kInGroup);
  } catch (const std::exception& e) {
    group.report_failure(e.what());
    throw;
  }
}

// Runs steps until the master ends the group (0). When the group breaks (a rank died), joins the
// master's next generation with fresh K/V caches and goes on; 1 when the master is gone.
int serve_as_worker(parallel::Group& group, const Model& model, Backend& backend,
                    const KvCacheShape& shape, int64_t max_batch_tokens) {
  const int rank = group.options().rank;
  while (true) {
    try {
      parallel::run_shard_worker(
          model, backend, shape, max_batch_tokens, group.parallel(), group.comms(),
          [&group](const parallel::RankStats& s) { group.publish_stats(s); });
      spdlog::info("the master shut the group down");
      return 0;
    } catch (const std::exception& ex) {
      spdlog::warn("rank {}: the group broke ({}); joining it again when the master re-forms it",
                   rank, ex.what());
    }
    try {
      if (!group.rejoin(model, backend)) {
        spdlog::info("the master shut the group down");
        return 0;
      }
    } catch (const std::exception& ex) {
      spdlog::error("worker rank {}: {}; exiting", rank, ex.what());
      return 1;
    }
  }
}

}  // namespace

int run_worker_node(const ServerArgs& args) {
  parallel::GroupOptions g = *args.group;
  g.max_batch_tokens = step_tokens(args.engine);
  std::atomic<parallel::Group*> joining{nullptr};
  ShutdownWatch watch(fmt::format("rank {}", g.rank), [&joining](const std::string& why) {
    if (parallel::Group* group = joining.load()) group->report_failure(why);
  });
  // A rank that comes when the master has already ended the group (a rank started again while
  // the master stopped) ends as the group's other workers do, with status 0.
  std::optional<parallel::Group> joined;
  std::unique_ptr<RankRuntime> rank;
  try {
    joined.emplace(g);  // reaches the master and claims the rank before loading anything
    joining = &*joined;
    rank = load_rank(args, *joined);
    joined->join(rank->model(), rank->backend());
  } catch (const parallel::GroupStopped&) {
    spdlog::info("rank {}: the master shut the group down before this rank joined it", g.rank);
    return 0;
  }
  parallel::Group& group = *joined;
  const Model* model = &rank->model();
  Backend& backend = rank->backend();
  watch.serving_as_worker(
      std::chrono::milliseconds(static_cast<int64_t>((args.shutdown_grace + 10) * 1000)));
  const KvCacheShape& shape = rank->kv_shape();
  // One /health per node: local rank 0 answers it; the node's other ranks listen on nothing.
  std::unique_ptr<HttpServer> http;
  std::thread http_thread;
  if (g.local_rank == 0) {
    http = std::make_unique<HttpServer>(args.http);
    add_worker_routes(*http, g, group);
    const int port = http->bind();
    http_thread = std::thread([&] { http->serve(); });
    spdlog::info("worker rank {} of {}: /health on http://{}:{}; requests go to the master", g.rank,
                 g.world_size, args.http.host, port);
  }
  const int status = serve_as_worker(group, *model, backend, shape, step_tokens(args.engine));
  if (http) {
    http->stop();
    http_thread.join();
  }
  return status;
}

}  // namespace shardlm::server
