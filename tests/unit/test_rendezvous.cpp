// The start-up protocol's pieces: rank claims on the store (duplicates, a holder whose heartbeat
// stopped), the group record comparison, the master's Roster verdicts, and the weights
// fingerprint (layout vs contents, the per-file hash cache).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "comm/store.h"
#include "model/model.h"
#include "model/weights_fingerprint.h"
#include "parallel/rendezvous.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::parallel {
namespace {

using ::shardlm::testing::error_of;
using ::shardlm::testing::TempDir;
using ::shardlm::testing::TinyModelSpec;
using ::shardlm::testing::write_tiny_gguf_model;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

struct StoreFixture {
  comm::StoreServer server{"127.0.0.1", 0, "token"};
  comm::StoreClient client{"127.0.0.1", server.port(), "token", 2000ms};
};

TEST(RankClaim, SecondLiveClaimantIsRefusedWithTheHolder) {
  StoreFixture s;
  std::string holder;
  std::chrono::milliseconds age{0};
  EXPECT_TRUE(s.client.claim("present/1", "first", "alive/1", 5000ms, holder, age));
  EXPECT_FALSE(s.client.claim("present/1", "second", "alive/1", 5000ms, holder, age));
  EXPECT_EQ(holder, "first");
  EXPECT_LT(age, 1000ms);
}

TEST(RankClaim, HolderWhoseHeartbeatStoppedIsReplaced) {
  StoreFixture s;
  std::string holder;
  std::chrono::milliseconds age{0};
  ASSERT_TRUE(s.client.claim("present/1", "crashed", "alive/1", 100ms, holder, age));
  std::this_thread::sleep_for(200ms);  // no heartbeat since the claim
  EXPECT_TRUE(s.client.claim("present/1", "restarted", "alive/1", 100ms, holder, age));
  std::string value;
  ASSERT_TRUE(s.server.peek("present/1", value));
  EXPECT_EQ(value, "restarted");
}

TEST(RankClaim, AnnounceNamesADuplicateAndTheMasterSeesIt) {
  StoreFixture s;
  GroupRecord record;
  record.build = "b";
  record.world_size = 2;
  record.pp = 2;
  record.nnodes = 2;
  record.master_host = "node-a";
  s.server.set("group", record.to_json());
  announce(s.client, 1, record, "node-b");
  const std::string e = error_of([&] { announce(s.client, 1, record, "node-c"); });
  EXPECT_THAT(e, HasSubstr("rank 1 is already taken by node-b"));
  Roster roster(s.server, 2, std::chrono::steady_clock::now(), 30000ms, "node-a:1");
  std::map<int, std::string> hellos;
  EXPECT_THAT(roster.check(hellos), HasSubstr("two nodes claim rank 1: node-b and node-c"));
}

TEST(GroupRecordTest, DifferencesNameTheBuildOrTheLayout) {
  GroupRecord master;
  master.build = "0.1.0 (commit aaa)";
  master.world_size = 4;
  master.tp = 2;
  master.pp = 2;
  master.nnodes = 2;
  master.master_host = "node-a";
  EXPECT_EQ(record_difference(master, GroupRecord::from_json(master.to_json())), "");
  GroupRecord mine = master;
  mine.build = "0.1.0 (commit bbb)";
  EXPECT_THAT(record_difference(mine, master),
              HasSubstr("runs shardlm 0.1.0 (commit bbb) but the master on node-a runs shardlm "
                        "0.1.0 (commit aaa)"));
  mine = master;
  mine.tp = 4;
  mine.pp = 1;
  EXPECT_THAT(record_difference(mine, master),
              HasSubstr("this node's layout is tp 4 x pp 1 = 4 ranks on 2 node(s)"));
  EXPECT_THAT(error_of([] { GroupRecord::from_json("{}"); }), HasSubstr("group record"));
}

TEST(RosterTest, FailureLostHeartbeatAndMissingRanksAreNamed) {
  comm::StoreServer server("127.0.0.1", 0, "");
  std::map<int, std::string> hellos;
  Roster fresh(server, 3, std::chrono::steady_clock::now(), 30000ms, "a:1");
  EXPECT_EQ(fresh.check(hellos), "");  // nobody yet, but the timeout has not passed
  EXPECT_THAT(fresh.waiting_for(hellos), HasSubstr("rank 1 (not reached the rendezvous yet)"));
  Roster late(server, 3, std::chrono::steady_clock::now() - 60s, 30000ms, "a:1");
  EXPECT_THAT(late.check(hellos), HasSubstr("rank(s) 1, 2 of 3 never reached the rendezvous"));
  server.set("present/1", R"({"host":"node-b","pid":7})");
  server.set("alive/1", "");
  server.set("hello/2", "{}");
  EXPECT_EQ(fresh.check(hellos), "");  // rank 1 loading, rank 2 in
  EXPECT_EQ(hellos.count(2), 1u);
  EXPECT_THAT(fresh.waiting_for(hellos), HasSubstr("rank 1 (loading on node-b)"));
  server.set("failed/1", R"({"host":"node-b","why":"out of memory"})");
  EXPECT_THAT(fresh.check(hellos), HasSubstr("rank 1 on node-b cannot start: out of memory"));
}

class Fingerprint : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("SHARDLM_CACHE_DIR", dir_.path("cache").c_str(), 1);
    write_tiny_gguf_model(dir_.path("a.gguf"), TinyModelSpec{}, DType::Q8_0);
  }
  void TearDown() override { ::unsetenv("SHARDLM_CACHE_DIR"); }

  // A copy of a.gguf with `n` bytes flipped in the middle of its tensor data.
  std::string changed_copy(size_t n) {
    std::ifstream in(dir_.path("a.gguf"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (size_t i = 0; i < n; ++i) bytes[bytes.size() / 2 + i] ^= 0x5A;
    const std::string path = dir_.path("b.gguf");
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  TempDir dir_{"fingerprint"};
};

TEST_F(Fingerprint, BytesInsideATensorChangeTheContentsNotTheLayout) {
  const WeightsFingerprint a = weights_fingerprint(*load_model(dir_.path("a.gguf")));
  const WeightsFingerprint b = weights_fingerprint(*load_model(changed_copy(64)));
  EXPECT_EQ(a.layout, b.layout);
  EXPECT_NE(a.contents, b.contents);
  EXPECT_THAT(fingerprint_difference(a.str(), b.str()), HasSubstr("different bytes"));
  EXPECT_EQ(fingerprint_difference(a.str(), a.str()), "");
  TinyModelSpec other;
  other.n_layers = 3;
  write_tiny_gguf_model(dir_.path("c.gguf"), other, DType::Q8_0);
  const WeightsFingerprint c = weights_fingerprint(*load_model(dir_.path("c.gguf")));
  EXPECT_THAT(fingerprint_difference(a.str(), c.str()), HasSubstr("the models differ"));
}

TEST_F(Fingerprint, HashIsCachedPerFileAndRefreshedOnRequest) {
  const std::string path = dir_.path("a.gguf");
  const std::string real = file_content_hash(path);
  ASSERT_EQ(real.size(), 16u);
  // Forge the cache entry: a cached read returns it (the file was not hashed again), a refresh
  // hashes the file and repairs the entry.
  std::filesystem::path entry;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path("cache") + "/fingerprints")) {
    entry = e.path();
  }
  std::ifstream in(entry);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const size_t at = text.find(real);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 16, "0123456789abcdef");
  std::ofstream(entry) << text;
  EXPECT_EQ(file_content_hash(path), "0123456789abcdef");
  EXPECT_EQ(file_content_hash(path, HashCache::refresh), real);
  EXPECT_EQ(file_content_hash(path), real);
}

}  // namespace
}  // namespace shardlm::parallel
