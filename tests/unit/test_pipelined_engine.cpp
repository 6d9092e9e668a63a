// Several steps in flight (a pipeline's virtual engines), driven through the Engine with a fake
// runner on the CPU that holds each submitted batch until it is collected: no request is ever in
// two batches in flight, a request that finished is not scheduled again, aborts of requests in
// flight wait for their batch, and the tokens equal one step at a time.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <numeric>
#include <set>
#include <string>

#include "engine/engine.h"

namespace shardlm {
namespace {

constexpr int32_t kVocab = 64;

// Next token = last input token + 1 (mod vocab), computed when the batch is collected. A
// sequence is known by its first KV block (prefix caching off: no two running requests share
// one).
class PipelinedRunner : public ModelRunner {
 public:
  explicit PipelinedRunner(int depth) : depth_(depth) {}
  int32_t vocab_size() const override { return kVocab; }
  int max_in_flight() const override { return depth_; }
  void execute(const ForwardBatch& batch, float* logits) override { fill(batch, logits); }
  void submit(const ForwardBatch& batch) override {
    std::set<int32_t> seqs;
    for (const auto& s : batch.seqs) seqs.insert(s.block_table.front());
    for (const auto& f : in_flight_) {
      for (int32_t id : seqs) {
        if (f.second.count(id)) ++overlaps;  // a sequence in two batches in flight
      }
    }
    in_flight_.push_back({batch, seqs});
    max_seen = std::max(max_seen, static_cast<int>(in_flight_.size()));
    ASSERT_LE(static_cast<int>(in_flight_.size()), depth_);
  }
  void collect(float* logits) override {
    ASSERT_FALSE(in_flight_.empty());
    fill(in_flight_.front().first, logits);
    in_flight_.pop_front();
  }
  int overlaps = 0;
  int max_seen = 0;

 private:
  static void fill(const ForwardBatch& batch, float* logits) {
    for (size_t i = 0; i < batch.logit_rows.size(); ++i) {
      float* row = logits + i * kVocab;
      std::fill(row, row + kVocab, 0.f);
      row[(batch.tokens[static_cast<size_t>(batch.logit_rows[i])] + 1) % kVocab] = 1.f;
    }
  }
  int depth_;
  std::deque<std::pair<ForwardBatch, std::set<int32_t>>> in_flight_;
};

EngineConfig config(int max_seqs, int max_tokens, int64_t n_blocks, int max_len = 64) {
  EngineConfig c;
  c.scheduler = {max_seqs, max_tokens, max_len};
  c.blocks = {n_blocks, 4, /*caching=*/false};
  c.eos_token_ids = {63};
  return c;
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  return p;
}

std::vector<int32_t> prompt(int n, int start = 0) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

// "scheduled | finished" for one step, requests named A, B, C... by id.
std::string describe(const StepOutput& s) {
  auto name = [](int64_t id) { return std::string(1, static_cast<char>('A' + id)); };
  std::string out;
  for (const auto& [id, n] : s.scheduled) out += name(id) + std::to_string(n) + " ";
  out += "|";
  for (const auto& f : s.finished) out += " " + name(f.id) + ":" + to_string(f.reason);
  return out;
}

TEST(PipelinedEngine, KeepsBatchesOfDifferentRequestsInFlight) {
  PipelinedRunner runner(2);
  Engine engine(config(8, 64, 64), runner);
  for (int i = 0; i < 4; ++i) engine.add_request(prompt(2, 10 * i), greedy(2));
  std::vector<std::string> table;
  while (engine.has_unfinished() && table.size() < 20) table.push_back(describe(engine.step()));
  const std::vector<std::string> expected = {
      "A2 B2 |",  // virtual engine 0 takes its half of the four requests
      "C2 D2 |",  // virtual engine 1 the other half, while A and B are in flight
      "A1 B1 |",  // A and B came back with their first tokens
      "C1 D1 |",
      "| A:length B:length",  // their second tokens: finished, not scheduled again
      "| C:length D:length",
  };
  EXPECT_EQ(table, expected);
  EXPECT_EQ(runner.overlaps, 0);
  EXPECT_EQ(runner.max_seen, 2);
}

// Many requests of different lengths arriving over time: never one request in two batches in
// flight, nothing scheduled after it finished, and every output as one step at a time gives.
TEST(PipelinedEngine, SameTokensAsOneStepAtATimeAndNoRequestTwiceInFlight) {
  for (int depth : {2, 3}) {
    PipelinedRunner piped(depth), plain(1);
    Engine a(config(16, 32, 256), piped), b(config(16, 32, 256), plain);
    std::map<int64_t, std::vector<int32_t>> out_a, out_b;
    std::set<int64_t> finished;
    for (int i = 0; i < 40; ++i) {
      const auto p = prompt(1 + i % 7, i);
      const auto params = greedy(1 + (i * 5) % 9);
      a.add_request(p, params);
      b.add_request(p, params);
      for (int s = 0; s < 2; ++s) {
        const StepOutput o = a.step();
        for (const auto& [id, n] : o.scheduled) EXPECT_FALSE(finished.count(id)) << id;
        for (const auto& f : o.finished) finished.insert(f.id), out_a[f.id] = f.output;
        for (const auto& f : b.step().finished) out_b[f.id] = f.output;
      }
    }
    for (int s = 0; s < 500 && a.has_unfinished(); ++s) {
      const StepOutput o = a.step();
      for (const auto& [id, n] : o.scheduled) EXPECT_FALSE(finished.count(id)) << id;
      for (const auto& f : o.finished) finished.insert(f.id), out_a[f.id] = f.output;
    }
    for (int s = 0; s < 500 && b.has_unfinished(); ++s) {
      for (const auto& f : b.step().finished) out_b[f.id] = f.output;
    }
    EXPECT_EQ(out_a.size(), 40u);
    EXPECT_EQ(out_a, out_b) << "depth " << depth;
    EXPECT_EQ(piped.overlaps, 0) << "depth " << depth;
    EXPECT_EQ(piped.max_seen, depth);
    EXPECT_EQ(a.block_manager().free_blocks(), 256);
  }
}

TEST(PipelinedEngine, AbortOfARequestInFlightWaitsForItsBatch) {
  PipelinedRunner runner(2);
  Engine engine(config(8, 64, 64), runner);
  const int64_t a = engine.add_request(prompt(3), greedy(5));
  engine.add_request(prompt(3, 20), greedy(5));
  EXPECT_EQ(describe(engine.step()), "A3 |");  // an even share: one request each
  EXPECT_EQ(describe(engine.step()), "B3 |");
  EXPECT_TRUE(engine.abort_request(a));  // in flight: ended when its batch is back
  EXPECT_EQ(describe(engine.step()), "| A:abort");
  EXPECT_EQ(engine.find(a), nullptr);
  EXPECT_EQ(describe(engine.step()), "B1 |");
  EXPECT_FALSE(engine.abort_request(a));
}

}  // namespace
}  // namespace shardlm
