// The KV transfer of disaggregated serving: a prompt's cached blocks exported from one engine and
// imported into another give the same greedy output as computing them (and are hit as a prefix),
// a set that does not belong to its tokens or to the cache's layout is refused; the wire format
// round-trips and refuses what is not a frame of its version; the TCP listener and client
// exchange a transfer and turn a dead peer or a refusing store into an Error, not a hang.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "core/error.h"
#include "engine/async_engine.h"
#include "engine/kv_block_transfer.h"
#include "engine/llm.h"
#include "fleet/kv_transfer_client.h"
#include "fleet/kv_transfer_protocol.h"
#include "fleet/kv_transfer_server.h"
#include "fleet/worker_info.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;
using namespace std::chrono_literals;

class KvTransferTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("kv_transfer");
    write_tiny_hf_model(dir_->path("m"), TinyModelSpec{});
  }
  static void TearDownTestSuite() { delete dir_; }

  static EngineArgs args(int block_size = 4) {
    EngineArgs a;
    a.model = dir_->path("m");
    a.threads = 1;
    a.device = "cpu";
    a.max_model_len = 128;
    a.num_kv_blocks = 64;
    a.block_size = block_size;
    a.show_progress = false;
    return a;
  }
  static SamplingParams greedy(int max_tokens) {
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.max_tokens = max_tokens;
    return p;
  }
  static std::vector<int32_t> prompt() {
    std::vector<int32_t> p;
    for (int i = 0; i < 23; ++i) p.push_back((i * 37 + 11) % 200);
    return p;
  }

  static TempDir* dir_;
};

TempDir* KvTransferTest::dir_ = nullptr;

TEST_F(KvTransferTest, ImportedBlocksAreHitAndOutputEqualsComputing) {
  LLM reference(args());
  const auto want = generate_ids(reference, prompt(), greedy(10));

  LLM prefill(args());
  generate_ids(prefill, prompt(), greedy(1));  // the prompt's K/V now in its prefix cache
  const KvBlockSet set = export_prompt_blocks(prefill.engine(), prompt());
  ASSERT_EQ(set.n_blocks(), (prompt().size() - 1) / 4);  // 5 blocks: all but the last token's
  EXPECT_EQ(set.bytes.size(), set.n_blocks() * set.layout.block_bytes());

  LLM decode(args());
  EXPECT_EQ(import_prompt_blocks(decode.engine(), set), 5);
  EXPECT_EQ(decode.engine().block_manager().cached_blocks(), 5);
  EXPECT_EQ(decode.engine().block_manager().usage(), 0.0);  // evictable, held by no request
  EXPECT_EQ(generate_ids(decode, prompt(), greedy(10)), want);
  EXPECT_EQ(decode.engine().block_manager().stats().hit_tokens, 20);
  // Importing again keeps the blocks it has.
  EXPECT_EQ(import_prompt_blocks(decode.engine(), set), 5);
  // the 32 tokens computed (23 prompt, 9 of the 10 output): 8 full blocks
  EXPECT_EQ(decode.engine().block_manager().cached_blocks(), 8);
}

TEST_F(KvTransferTest, ImportsAnOverlappedTransferPartByPart) {
  LLM reference(args());
  const auto want = generate_ids(reference, prompt(), greedy(10));
  LLM prefill(args());
  generate_ids(prefill, prompt(), greedy(1));
  const KvBlockSet whole = export_prompt_blocks(prefill.engine(), prompt());
  // part 1: the first 2 blocks (a chunk's), with bytes; part 2: all 5, bytes of blocks 2..4 only
  KvBlockSet part1 = whole;
  part1.hashes.resize(2);
  part1.tokens.resize(2 * 4);
  part1.bytes.resize(2 * whole.layout.block_bytes());
  const KvBlockSet part2 = export_prompt_blocks(prefill.engine(), prompt(), 2);
  EXPECT_EQ(part2.first, 2u);
  EXPECT_EQ(part2.bytes, whole.bytes.substr(2 * whole.layout.block_bytes()));
  EXPECT_EQ(export_prompt_blocks(prefill.engine(), prompt(), 9).first, 5u);  // nothing new

  LLM decode(args());
  EXPECT_EQ(import_prompt_blocks(decode.engine(), part2), 0);  // its first blocks are missing
  EXPECT_EQ(import_prompt_blocks(decode.engine(), part1), 2);
  EXPECT_EQ(import_prompt_blocks(decode.engine(), part2), 5);
  EXPECT_EQ(generate_ids(decode, prompt(), greedy(10)), want);
  EXPECT_EQ(decode.engine().block_manager().stats().hit_tokens, 20);
  KvBlockSet bad = part2;
  bad.first = 6;
  EXPECT_THROW(import_prompt_blocks(decode.engine(), bad), Error);
}

TEST_F(KvTransferTest, RefusesForeignHashesAndLayouts) {
  LLM prefill(args());
  generate_ids(prefill, prompt(), greedy(1));
  KvBlockSet set = export_prompt_blocks(prefill.engine(), prompt());
  LLM decode(args());
  KvBlockSet forged = set;
  forged.hashes[2] ^= 1;
  EXPECT_THROW(import_prompt_blocks(decode.engine(), forged), Error);
  KvBlockSet short_bytes = set;
  short_bytes.bytes.pop_back();
  EXPECT_THROW(import_prompt_blocks(decode.engine(), short_bytes), Error);
  LLM other(args(8));
  EXPECT_THROW(import_prompt_blocks(other.engine(), set), Error);
  EXPECT_EQ(decode.engine().block_manager().cached_blocks(), 0);
}

TEST_F(KvTransferTest, TasksRunBetweenStepsOnTheEngineThread) {
  LLM llm(args());
  AsyncEngine engine(llm.engine());
  const auto stream = engine.submit(prompt(), greedy(4));
  KvBlockSet set;
  while (!stream->done()) stream->next(1s);
  engine.run_between_steps([&](Engine& e) { set = export_prompt_blocks(e, prompt()); }).get();
  EXPECT_EQ(set.n_blocks(), 5u);
  auto failing = engine.run_between_steps([](Engine&) { fail("this task fails"); });
  EXPECT_THROW(failing.get(), Error);
  engine.stop();
  EXPECT_THROW(engine.run_between_steps([](Engine&) {}), Error);  // refused once stopped
}

KvBlockSet small_set() {
  KvBlockSet s;
  s.layout = {2, 3, 2, 4, true};
  s.tokens = {1, 2, 3, 4};
  s.hashes = {block_hash(0, s.tokens.data(), 2)};
  s.hashes.push_back(block_hash(s.hashes[0], s.tokens.data() + 2, 2));
  s.bytes.assign(2 * s.layout.block_bytes(), 'x');
  return s;
}

TEST(KvTransferProtocol, RoundTripsAndRefusesOtherFrames) {
  const KvBlockSet s = small_set();
  const KvBlockSet back = fleet::decode_blocks(fleet::encode_blocks(s));
  EXPECT_TRUE(back.layout == s.layout);
  EXPECT_EQ(back.tokens, s.tokens);
  EXPECT_EQ(back.hashes, s.hashes);
  EXPECT_EQ(back.bytes, s.bytes);
  EXPECT_EQ(back.first, 0u);
  KvBlockSet later = s;
  later.first = 1;
  EXPECT_EQ(fleet::decode_blocks(fleet::encode_blocks(later)).first, 1u);
  std::string why;
  const std::string head = fleet::encode_header({1, fleet::KvFrameKind::kBlocks, 42, 99});
  ASSERT_EQ(head.size(), fleet::kKvFrameHeaderBytes);
  const auto h = fleet::decode_header(head, why);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->request_id, 42u);
  EXPECT_EQ(h->payload_bytes, 99u);
  EXPECT_FALSE(fleet::decode_header(std::string(32, 'x'), why));
  EXPECT_NE(why.find("magic"), std::string::npos);
  EXPECT_FALSE(
      fleet::decode_header(fleet::encode_header({7, fleet::KvFrameKind::kAck, 1, 0}), why));
  EXPECT_NE(why.find("version 7"), std::string::npos);
  EXPECT_FALSE(fleet::decode_header(
      fleet::encode_header({1, fleet::KvFrameKind::kBlocks, 1, fleet::kKvMaxPayloadBytes + 1}),
      why));
  EXPECT_THROW(fleet::decode_blocks("ab"), Error);
  EXPECT_THROW(fleet::decode_blocks(std::string("\x05\0\0\0{}", 6)), Error);
}

TEST(KvTransferSocket, ExchangesBlocksAndFailsCleanly) {
  int64_t stored = 0;
  fleet::KvTransferServer server(
      "127.0.0.1", 0,
      [&](uint64_t id, KvBlockSet set) {
        if (id == 13) fail("no room for request 13");
        stored += static_cast<int64_t>(set.n_blocks());
        return static_cast<int64_t>(set.n_blocks());
      },
      2s);
  const std::string target = "127.0.0.1:" + std::to_string(server.port());
  const auto r = fleet::send_kv_blocks(target, 1, small_set());
  EXPECT_EQ(r.blocks_stored, 2);
  EXPECT_EQ(stored, 2);
  EXPECT_EQ(server.stats().blocks.load(), 2);
  try {
    fleet::send_kv_blocks(target, 13, small_set());
    ADD_FAILURE() << "a refusing store must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no room for request 13"), std::string::npos);
  }
  // Garbage, then a peer that connects and says nothing: refused / timed out, still serving.
  const int fd = fleet::connect_tcp(target, 1s);
  ASSERT_EQ(::write(fd, "garbage garbage garbage garbage!", 32), 32);
  char buf[256];
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);           // connect_tcp's socket is non-blocking
  EXPECT_GT(::read(fd, buf, sizeof(buf)), 0);  // an error frame
  ::close(fd);
  EXPECT_EQ(fleet::send_kv_blocks(target, 2, small_set()).blocks_stored, 2);
  EXPECT_GE(server.stats().refused.load(), 2);
  // Nobody listening: an Error at once.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(fleet::send_kv_blocks("127.0.0.1:1", 3, small_set(), 1s), Error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(KvTransferRoles, RegistrationsCarryTheRoleAndTheDecodeWorkersAddress) {
  fleet::WorkerInfo w{"h-1-a", "tiny", "http://10.0.0.3:8001", 16, 1, 1, 1, "decode"};
  w.kv_transfer = "10.0.0.3:8101";
  std::string why;
  const auto back = fleet::parse_worker_info(w.to_json(), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->role, "decode");
  EXPECT_EQ(back->kv_transfer, "10.0.0.3:8101");
  w.kv_transfer.clear();  // a decode worker nobody can send KV to
  why.clear();
  EXPECT_FALSE(fleet::parse_worker_info(w.to_json(), why));
  EXPECT_NE(why.find("kv_transfer"), std::string::npos);
  w.role = "speculator";
  why.clear();
  EXPECT_FALSE(fleet::parse_worker_info(w.to_json(), why));
  EXPECT_NE(why.find("role"), std::string::npos);
  w.role = "prefill";
  why.clear();
  EXPECT_TRUE(fleet::parse_worker_info(w.to_json(), why)) << why;
}

}  // namespace
}  // namespace shardlm
