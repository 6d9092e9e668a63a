// The fleet's pieces that need no server: base64, registrations, the prefix-cache events and the
// frontend's index of them, the routing policies.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fleet/base64.h"
#include "fleet/kv_index.h"
#include "fleet/router.h"
#include "fleet/worker_info.h"
#include "kv/block_manager.h"

namespace shardlm::fleet {
namespace {

TEST(FleetBase64, RoundTripsAndRejectsGarbage) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "shardlm/workers/\xff\x00x"}) {
    EXPECT_EQ(base64_decode(base64_encode(s)).value(), s);
  }
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_FALSE(base64_decode("Zm9").has_value());
  EXPECT_FALSE(base64_decode("Z!9v").has_value());
  EXPECT_FALSE(base64_decode("Zm=v").has_value());
}

TEST(FleetWorkerInfo, RoundTripsAndRefusesMalformedEntries) {
  WorkerInfo w{"host-1-ab", "tiny", "http://10.0.0.2:8001", 16, 2, 1, 2, "aggregated"};
  std::string why;
  const auto back = parse_worker_info(w.to_json(), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->url, w.url);
  EXPECT_EQ(back->tp, 2);
  EXPECT_EQ(w.key(), "shardlm/workers/tiny/host-1-ab");
  for (const char* bad :
       {"{", "[]", R"({"version":1,"id":"a","model":"m","url":"http://h:1"})",
        R"({"version":2,"id":"a","model":"m","url":"http://h:1","block_size":16})",
        R"({"version":1,"id":"a","model":"m","url":"ftp://h:1","block_size":16})",
        R"({"version":1,"id":"a","model":"m","url":"http://h:1","block_size":0})",
        R"({"version":1,"id":"a","model":"m","url":"http://h:1","block_size":"16"})",
        R"({"version":1,"id":"a","model":"m","url":"http://h:1","block_size":16,"tp":"x"})"}) {
    why.clear();
    EXPECT_FALSE(parse_worker_info(bad, why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

// The block manager's events carry the same chained hashes the frontend computes from a prompt.
TEST(FleetKvEvents, BlockManagerEventsMatchFrontendHashes) {
  BlockManager bm(BlockManagerConfig{4, 4, true});
  std::vector<KvCacheEvent> events;
  bm.set_event_listener([&](const KvCacheEvent& e) { events.push_back(e); });
  const std::vector<int32_t> prompt{1, 2, 3, 4, 5, 6, 7, 8, 9};
  BlockTable t;
  ASSERT_TRUE(bm.allocate(t, 9));
  bm.commit(t, prompt, 9);
  const auto hashes = prefix_block_hashes(prompt, 4);
  ASSERT_EQ(hashes.size(), 2u);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, KvCacheEvent::Kind::kStored);
  EXPECT_EQ(events[0].hash, hashes[0]);
  EXPECT_EQ(events[0].parent, 0u);
  EXPECT_EQ(events[1].hash, hashes[1]);
  EXPECT_EQ(events[1].parent, hashes[0]);
  bm.free(t);
  events.clear();
  bm.reset_prefix_cache();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, KvCacheEvent::Kind::kRemoved);
}

TEST(FleetKvIndex, AppliesEventsAndCountsLeadingOverlap) {
  KvIndex index;
  const std::vector<uint64_t> h{11, 22, 33};
  nlohmann::json msg{{"worker", "w1"}, {"events", {{1, 11, 0}, {1, 22, 11}}}};
  ASSERT_TRUE(index.apply_events(msg.dump()));
  EXPECT_EQ(index.overlap("w1", h), 2);
  EXPECT_EQ(index.overlap("w2", h), 0);
  ASSERT_TRUE(index.apply_events(R"({"worker":"w1","events":[[0,11]]})"));
  EXPECT_EQ(index.overlap("w1", h), 0);  // a prefix without its first block is no prefix
  EXPECT_FALSE(index.apply_events("{not json"));
  EXPECT_FALSE(index.apply_events(R"({"events":[]})"));
  ASSERT_TRUE(index.apply_load(R"({"worker":"w1","running":3,"kv_usage":0.5})"));
  EXPECT_EQ(index.load("w1").running, 3);
  index.predict("w2", h);
  EXPECT_EQ(index.overlap("w2", h), 3);
  index.retain({"w1"});
  EXPECT_EQ(index.overlap("w2", h), 0);
}

std::vector<WorkerInfo> two_workers() {
  WorkerInfo a{"a", "m", "http://127.0.0.1:1", 4}, b{"b", "m", "http://127.0.0.1:2", 4};
  return {a, b};
}

TEST(FleetRouter, RoundRobinAlternatesAndListsFallbacks) {
  KvIndex index;
  Router r(RouterMode::kRoundRobin, {}, index);
  const auto d1 = r.route(two_workers(), {});
  const auto d2 = r.route(two_workers(), {});
  ASSERT_EQ(d1.order.size(), 2u);
  EXPECT_NE(d1.order[0].id, d2.order[0].id);
  EXPECT_NE(d1.order[0].id, d1.order[1].id);
}

TEST(FleetRouter, KvPrefersCachedPrefixUnlessLoadOutweighsIt) {
  KvIndex index;
  Router r(RouterMode::kKv, {}, index);
  const std::vector<uint64_t> h{1, 2, 3, 4, 5, 6, 7, 8};
  index.apply_events(nlohmann::json{{"worker", "b"}, {"events", {{1, 1, 0}, {1, 2, 1}, {1, 3, 2}}}}
                         .dump());
  for (int i = 0; i < 4; ++i) {
    const auto d = r.route(two_workers(), h);
    EXPECT_EQ(d.order[0].id, "b");
    EXPECT_EQ(d.overlap_blocks, 3);
    EXPECT_EQ(d.request_blocks, 8);
  }
  // b busy with many blocks: the cost of its load beats the 3 cached blocks.
  index.apply_load(R"({"worker":"b","running":8,"kv_usage":0.5,"kv_total_tokens":400})");
  EXPECT_EQ(r.route(two_workers(), h).order[0].id, "a");
  // Requests in flight count as load too.
  KvIndex empty;
  Router r2(RouterMode::kKv, {}, empty);
  Router::InFlight busy(r2, "a", 20);
  EXPECT_EQ(r2.route(two_workers(), h).order[0].id, "b");
}

TEST(FleetRouter, ParsesModes) {
  EXPECT_EQ(parse_router_mode("kv"), RouterMode::kKv);
  EXPECT_THROW(parse_router_mode("least-loaded"), std::exception);
}

}  // namespace
}  // namespace shardlm::fleet
