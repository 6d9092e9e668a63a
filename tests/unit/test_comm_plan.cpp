// Choosing the communicator of each TP group and pipeline link (comm_plan.h): NCCL only where
// every rank has a GPU of its own, the --dist-backend override and its start-up errors (also
// through a real handshake, with backends that claim one shared GPU), the handshake's hello and
// the plan on the wire, and the host all_gather_cols over two Gloo ranks.
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "comm/gloo_communicator.h"
#include "core/error.h"
#include "parallel/comm_plan.h"
#include "parallel/device_communicator.h"
#include "parallel/group.h"
#include "parallel/hello.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::parallel {
namespace {

using namespace shardlm::testing;

ParallelConfig layout(int tp, int pp) {
  ParallelConfig c;
  c.tp = tp;
  c.pp = pp;
  return c;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(CommPlan, ParsesTheFlag) {
  EXPECT_EQ(parse_dist_backend(""), DistBackend::kAuto);
  EXPECT_EQ(parse_dist_backend("auto"), DistBackend::kAuto);
  EXPECT_EQ(parse_dist_backend("nccl"), DistBackend::kNccl);
  EXPECT_EQ(parse_dist_backend("gloo"), DistBackend::kGloo);
  EXPECT_TRUE(contains(error_of([] { parse_dist_backend("mpi"); }), "use auto, nccl or gloo"));
}

// tp 2 x pp 2: stage 0 (ranks 0, 1) on GPUs a and b of host x; stage 1 (ranks 2, 3) sharing GPU c.
std::vector<RankDevice> mixed() {
  return {{"x", "GPU-a"}, {"x", "GPU-b"}, {"x", "GPU-c"}, {"x", "GPU-c"}};
}

TEST(CommPlan, AutoUsesNcclWhereEveryRankHasItsOwnGpu) {
  const CommPlan p = plan_comms(layout(2, 2), mixed(), DistBackend::kAuto, true);
  EXPECT_EQ(p.tp_nccl, (std::vector<bool>{true, false}));  // stage 1 shares GPU c
  EXPECT_TRUE(p.link_to_next_nccl(0, 0));                  // rank 0 (a) -> rank 2 (c)
  EXPECT_TRUE(p.link_to_next_nccl(0, 1));                  // rank 1 (b) -> rank 3 (c)
  EXPECT_TRUE(p.any_nccl());
  EXPECT_EQ(p.describe(),
            "TP groups by stage: nccl, gloo; pipeline links: nccl, nccl (gloo = "
            "host-staged)");
}

TEST(CommPlan, AutoStagesThroughTheHostForCpuRanksOrWithoutNccl) {
  const std::vector<RankDevice> cpu = {{"x", ""}, {"y", ""}};
  EXPECT_FALSE(plan_comms(layout(2, 1), cpu, DistBackend::kAuto, true).any_nccl());
  const std::vector<RankDevice> half = {{"x", "GPU-a"}, {"y", ""}};
  EXPECT_FALSE(plan_comms(layout(1, 2), half, DistBackend::kAuto, true).any_nccl());
  EXPECT_FALSE(plan_comms(layout(2, 2), mixed(), DistBackend::kAuto, false).any_nccl());
}

TEST(CommPlan, GlooNeverUsesNccl) {
  EXPECT_FALSE(plan_comms(layout(2, 2), mixed(), DistBackend::kGloo, true).any_nccl());
}

TEST(CommPlan, ForcedNcclOnASharedGpuNamesTheRanks) {
  const std::string e =
      error_of([] { plan_comms(layout(2, 2), mixed(), DistBackend::kNccl, true); });
  EXPECT_TRUE(contains(e, "the TP group of stage 1")) << e;
  EXPECT_TRUE(contains(e, "ranks 2 and 3 on x share the GPU GPU-c")) << e;
  EXPECT_TRUE(contains(e, "--dist-backend auto or gloo")) << e;
  // Distinct GPUs everywhere: every group and link is NCCL.
  const std::vector<RankDevice> own = {
      {"x", "GPU-a"}, {"x", "GPU-b"}, {"y", "GPU-a2"}, {"y", "GPU-b2"}};
  const CommPlan p = plan_comms(layout(2, 2), own, DistBackend::kNccl, true);
  EXPECT_EQ(p.tp_nccl, (std::vector<bool>{true, true}));
  EXPECT_EQ(p.link_nccl, (std::vector<bool>{true, true}));
}

TEST(CommPlan, ForcedNcclOnTheCpuOrWithoutTheBuildFails) {
  const std::vector<RankDevice> half = {{"x", "GPU-a"}, {"y", ""}};
  const std::string cpu =
      error_of([&] { plan_comms(layout(1, 2), half, DistBackend::kNccl, true); });
  EXPECT_TRUE(contains(cpu, "the pipeline link from rank 0 to rank 1")) << cpu;
  EXPECT_TRUE(contains(cpu, "rank 1 on y runs on the CPU")) << cpu;
  const std::string build =
      error_of([] { plan_comms(layout(2, 2), mixed(), DistBackend::kNccl, false); });
  EXPECT_TRUE(contains(build, "built without NCCL")) << build;
}

TEST(CommPlan, RoundTripsAndChecksItsVersionAndShape) {
  const CommPlan p = plan_comms(layout(2, 2), mixed(), DistBackend::kAuto, true);
  const CommPlan q = CommPlan::from_json(p.to_json());
  EXPECT_EQ(q.tp, 2);
  EXPECT_EQ(q.pp, 2);
  EXPECT_EQ(q.tp_nccl, p.tp_nccl);
  EXPECT_EQ(q.link_nccl, p.link_nccl);
  EXPECT_TRUE(contains(error_of([] { CommPlan::from_json(R"({"version":9})"); }), "version 9"));
  EXPECT_TRUE(contains(error_of([] {
                         CommPlan::from_json(
                             R"({"version":1,"tp":2,"pp":2,"tp_nccl":[true],"link_nccl":[]})");
                       }),
                       "does not fit"));
}

TEST(Handshake, HelloRoundTripsWithItsDevice) {
  Hello h;
  h.rank = 3;
  h.host = "node-b";
  h.address = "10.0.0.3";
  h.liveness_port = 4321;
  h.version = "0.1.0";
  h.fingerprint = "ab";
  h.tp = 2;
  h.pp = 2;
  h.world_size = 4;
  h.device = "GPU-1234 (PCI 0000:1b:00.0)";
  const Hello back = Hello::from_json(h.to_json());
  EXPECT_EQ(back.hello_version, Hello::kVersion);
  EXPECT_EQ(back.rank, 3);
  EXPECT_EQ(back.host, "node-b");
  EXPECT_EQ(back.address, "10.0.0.3");
  EXPECT_EQ(back.liveness_port, 4321);
  EXPECT_EQ(back.device, "GPU-1234 (PCI 0000:1b:00.0)");
  EXPECT_EQ(back.world_size, 4);
  EXPECT_EQ(hello_difference(h.to_json(), back.to_json()), "");
}

// The step token limit: a rank below the master's (who schedules the steps) is named; at or above
// it, or not told (an older hello), is fine.
TEST(Handshake, AStepLimitBelowTheMastersIsNamed) {
  Hello master;
  master.fingerprint = "ab";
  master.version = "0.1.0";
  master.max_batch_tokens = 8192;
  Hello rank = master;
  rank.max_batch_tokens = 512;
  const std::string d = hello_difference(master.to_json(), rank.to_json());
  EXPECT_TRUE(contains(d, "--max-num-batched-tokens: the master schedules steps of up to 8192 "
                          "tokens, this rank takes at most 512")) << d;
  EXPECT_EQ(hello_difference(rank.to_json(), master.to_json()), "");
  EXPECT_EQ(Hello::from_json(rank.to_json()).max_batch_tokens, 512);
  auto untold = nlohmann::json::parse(rank.to_json());
  untold.erase("max_batch_tokens");
  EXPECT_EQ(Hello::from_json(untold.dump()).max_batch_tokens, 0);
  EXPECT_EQ(hello_difference(master.to_json(), untold.dump()), "");
}

TEST(Handshake, AnOlderHelloIsRefusedNamingTheVersions) {
  // Version 1 had no hello_version field and no device.
  const std::string v1 =
      R"({"rank":1,"host":"b","address":"a","liveness_port":1,"version":"0.1.0",)"
      R"("fingerprint":"ab","tp":2,"pp":1,"world_size":2})";
  const std::string e = error_of([&] { Hello::from_json(v1); });
  EXPECT_TRUE(contains(e, "rank 1 speaks handshake version 1, this one 2")) << e;
  Hello now;
  now.fingerprint = "ab";
  now.version = "0.1.0";
  now.tp = 2;
  now.world_size = 2;
  EXPECT_EQ(hello_difference(now.to_json(), v1), "hello_version: 2 vs 1");
  EXPECT_TRUE(contains(error_of([] { Hello::from_json("not json"); }), "not JSON"));
}

// A CPU backend that claims a GPU: the handshake sees every rank on the same device.
class SameGpuBackend : public CpuBackend {
 public:
  SameGpuBackend() : CpuBackend(one_thread()) {}
  std::string device_id() const override { return "GPU-shared (PCI 0000:01:00.0)"; }

 private:
  static CpuBackendOptions one_thread() {
    CpuBackendOptions o;
    o.threads = 1;
    return o;
  }
};

// --dist-backend nccl with two ranks on one GPU: both ranks stop at the handshake with the reason.
TEST(Handshake, ForcedNcclOnOneGpuStopsEveryRankAtStartUp) {
  TempDir dir("comm_plan");
  TinyModelSpec spec;
  spec.ffn_dim = 128;
  write_tiny_gguf_model(dir.path("m.gguf"), spec, DType::Q8_0);
  auto model = load_model(dir.path("m.gguf"));
  GroupOptions o;
  o.world_size = 2;
  o.tp = 2;
  o.master_port = 0;
  o.token = "t";
  o.startup_timeout = std::chrono::milliseconds(5000);
  o.dist_backend = DistBackend::kNccl;
  Group master(o);
  SameGpuBackend gpu0, gpu1;
  auto worker = std::async(std::launch::async, [&] {
    GroupOptions w = o;
    w.rank = 1;
    w.master_port = master.options().master_port;
    w.dist_backend = DistBackend::kAuto;  // the master's choice applies to the group
    Group g(w);
    return error_of([&] { g.join(*model, gpu1); });
  });
  const std::string e = error_of([&] { master.join(*model, gpu0); });
  const std::string why = nccl_available() ? "ranks 0 and 1 on" : "built without NCCL";
  EXPECT_TRUE(contains(e, "--dist-backend nccl")) << e;
  EXPECT_TRUE(contains(e, why)) << e;
  const std::string w = worker.get();
  EXPECT_TRUE(contains(w, "the master stopped the group")) << w;
  EXPECT_TRUE(contains(w, why)) << w;
}

// The host all_gather_cols: rank r's [rows][cols] block lands in columns [r * cols, (r + 1) *
// cols).
TEST(Communicator, AllGatherColsPutsEachRanksColumnsSideBySide) {
  comm::StoreServer server("127.0.0.1", 0, "t");
  const int rows = 3, cols = 2;
  auto run_rank = [&](int rank) {
    comm::StoreClient store("127.0.0.1", server.port(), "t", std::chrono::milliseconds(5000));
    comm::GlooCommunicator comm(store, "cols/", rank, 2, std::chrono::milliseconds(5000));
    std::vector<float> local(rows * cols), full(rows * cols * 2, -1.f);
    for (int i = 0; i < rows * cols; ++i) local[i] = 100.f * rank + i;
    comm.all_gather_cols(local.data(), rows, cols, full.data());
    return full;
  };
  auto other = std::async(std::launch::async, run_rank, 1);
  const std::vector<float> mine = run_rank(0);
  // Row i: rank 0's (2i, 2i+1), then rank 1's (100 + 2i, 101 + 2i).
  const std::vector<float> want = {0, 1, 100, 101, 2, 3, 102, 103, 4, 5, 104, 105};
  EXPECT_EQ(mine, want);
  EXPECT_EQ(other.get(), want);
}

}  // namespace
}  // namespace shardlm::parallel
