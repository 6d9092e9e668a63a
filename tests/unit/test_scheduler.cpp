// Scheduler iteration tables: which requests are admitted, chunked, preempted and finished at each
// step, driven through the Engine with a fake model runner on the CPU.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <string>

#include "core/error.h"
#include "engine/engine.h"

namespace shardlm {
namespace {

// Next token = last input token + 1 (mod vocab): deterministic whatever the batch looks like.
class FakeRunner : public ModelRunner {
 public:
  int32_t vocab_size() const override { return 64; }
  void execute(const ForwardBatch& batch, float* logits) override {
    ++calls;
    for (size_t i = 0; i < batch.logit_rows.size(); ++i) {
      float* row = logits + i * 64;
      std::fill(row, row + 64, 0.f);
      row[(batch.tokens[static_cast<size_t>(batch.logit_rows[i])] + 1) % 64] = 1.f;
    }
  }
  int calls = 0;
};

EngineConfig config(int max_seqs, int max_tokens, int64_t n_blocks, int max_len = 32,
                    bool caching = true) {
  EngineConfig c;
  c.scheduler = {max_seqs, max_tokens, max_len};
  c.blocks = {n_blocks, 4, caching};
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

// One step as "scheduled | preempted | finished", requests named A, B, C... by id.
std::string describe(const StepOutput& s) {
  auto name = [](int64_t id) { return std::string(1, static_cast<char>('A' + id)); };
  std::string out;
  for (const auto& [id, n] : s.scheduled) out += name(id) + std::to_string(n) + " ";
  out += "|";
  for (int64_t id : s.preempted) out += " " + name(id);
  out += " |";
  for (const auto& f : s.finished) out += " " + name(f.id) + ":" + to_string(f.reason);
  return out;
}

std::vector<std::string> run_all(Engine& engine, int max_steps = 50) {
  std::vector<std::string> table;
  while (engine.has_unfinished() && static_cast<int>(table.size()) < max_steps) {
    table.push_back(describe(engine.step()));
  }
  return table;
}

TEST(Scheduler, AdmitsFcfsChunksLongPromptsAndCapsSeqs) {
  FakeRunner runner;
  Engine engine(config(/*max_seqs=*/2, /*max_tokens=*/8, /*n_blocks=*/16), runner);
  engine.add_request(prompt(10), greedy(3));  // A: chunked 8 + 2
  engine.add_request(prompt(3, 20), greedy(3));
  engine.add_request(prompt(2, 30), greedy(2));
  const std::vector<std::string> expected = {
      "A8 | |",                       // A's first chunk fills the budget
      "A2 B3 | |",                    // A finishes its prefill, B admitted; C waits for a seat
      "A1 B1 | |",                    // decodes
      "A1 B1 | | A:length B:length",  // three tokens each
      "C2 | |",                       // C admitted once seats are free
      "C1 | | C:length",
  };
  EXPECT_EQ(run_all(engine), expected);
}

TEST(Scheduler, DecodesGoFirstAndShareTheBudgetWithPrefills) {
  FakeRunner runner;
  Engine engine(config(4, 6, 16), runner);
  engine.add_request(prompt(4), greedy(4));
  EXPECT_EQ(describe(engine.step()), "A4 | |");
  engine.add_request(prompt(9, 10), greedy(1));
  EXPECT_EQ(describe(engine.step()), "A1 B5 | |");  // the decode first, then a 5-token chunk
  EXPECT_EQ(describe(engine.step()), "A1 B4 | | B:length");
}

TEST(Scheduler, PreemptsYoungestByRecomputeWhenBlocksRunOut) {
  FakeRunner runner;
  // 4 blocks of 4 tokens; each request needs 3 blocks to finish.
  Engine engine(config(4, 64, /*n_blocks=*/4, /*max_len=*/16, /*caching=*/false), runner);
  engine.add_request(prompt(6), greedy(6));
  engine.add_request(prompt(6, 20), greedy(6));
  const std::vector<std::string> expected = {
      "A6 B6 | |",  // two blocks each: the pool is full
      "A1 B1 | |",  // tokens 7 and 8 fit the second blocks
      "A1 B1 | |",
      "A1 | B |",  // A needs a third block: B (youngest) is preempted; no admission this step
      "A1 | |",    // B cannot come back yet: one block free, three needed
      "A1 | | A:length",
      "B9 | |",  // B recomputes its prompt and three tokens, then samples its fourth
      "B1 | |",          "B1 | | B:length",
  };
  EXPECT_EQ(run_all(engine), expected);
  EXPECT_EQ(engine.block_manager().free_blocks(), 4);
}

TEST(Scheduler, PreemptedRequestKeepsItsOutputAndRng) {
  FakeRunner runner;
  Engine engine(config(4, 64, 4, 16, false), runner);
  engine.add_request(prompt(6), greedy(6));
  engine.add_request(prompt(6, 20), greedy(6));
  std::vector<FinishedRequest> done;
  while (engine.has_unfinished()) {
    for (auto& f : engine.step().finished) done.push_back(f);
  }
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].n_preemptions, 1);
  EXPECT_EQ(done[1].output, prompt(6, 26));  // unchanged by the recompute
  EXPECT_EQ(done[0].output, prompt(6, 6));
}

TEST(Scheduler, PrefixCacheHitSkipsComputedBlocks) {
  FakeRunner runner;
  Engine engine(config(4, 64, 16), runner);
  engine.add_request(prompt(9), greedy(2));
  EXPECT_EQ(describe(engine.step()), "A9 | |");
  engine.add_request(prompt(9), greedy(2));
  EXPECT_EQ(describe(engine.step()), "A1 B1 | | A:length");  // B's two full blocks were cached
  EXPECT_EQ(engine.block_manager().stats().hit_tokens, 8);
  EXPECT_EQ(engine.block_manager().stats().queried_tokens, 18);
}

TEST(Scheduler, AbortFreesBlocksAndReportsNextStep) {
  FakeRunner runner;
  Engine engine(config(4, 64, 16), runner);
  const int64_t a = engine.add_request(prompt(5), greedy(10));
  engine.add_request(prompt(5, 10), greedy(10));
  engine.step();
  EXPECT_EQ(engine.block_manager().free_blocks(), 12);
  EXPECT_TRUE(engine.abort_request(a));
  EXPECT_FALSE(engine.abort_request(a));
  EXPECT_EQ(engine.block_manager().free_blocks(), 14);
  EXPECT_EQ(describe(engine.step()), "B1 | | A:abort");
}

TEST(Scheduler, StopConditions) {
  FakeRunner runner;
  Engine engine(config(4, 64, 16, /*max_len=*/12), runner);
  engine.add_request(prompt(2, 60), greedy(10));  // 60 61 -> 62, 63 = EOS
  SamplingParams ignore = greedy(3);
  ignore.ignore_eos = true;
  engine.add_request(prompt(2, 60), ignore);  // EOS ignored: 62 63 0
  SamplingParams stop = greedy(10);
  stop.stop_token_ids = {5};
  engine.add_request(prompt(2), stop);            // 2 3 4 5
  engine.add_request(prompt(8, 10), greedy(20));  // max_model_len 12: four tokens
  std::map<int64_t, FinishedRequest> done;
  while (engine.has_unfinished()) {
    for (auto& f : engine.step().finished) done[f.id] = f;
  }
  EXPECT_EQ(done[0].reason, RequestFinishReason::kStop);
  EXPECT_EQ(done[0].output, (std::vector<int32_t>{62, 63}));
  EXPECT_EQ(done[1].reason, RequestFinishReason::kLength);
  EXPECT_EQ(done[1].output, (std::vector<int32_t>{62, 63, 0}));
  EXPECT_EQ(done[2].reason, RequestFinishReason::kStop);
  EXPECT_EQ(done[2].output, (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(done[3].reason, RequestFinishReason::kLength);
  EXPECT_EQ(done[3].output.size(), 4u);
}

TEST(Scheduler, RejectsBadRequestsAndConfigs) {
  FakeRunner runner;
  Engine engine(config(4, 64, 16, 12), runner);
  EXPECT_THROW(engine.add_request({}, greedy(1)), Error);
  EXPECT_THROW(engine.add_request(prompt(12), greedy(1)), Error);
  EXPECT_THROW(engine.add_request({64}, greedy(1)), Error);
  EXPECT_FALSE(engine.has_unfinished());
  EXPECT_THROW(Engine(config(4, 64, /*n_blocks=*/2, /*max_len=*/12), runner), Error);
}

}  // namespace
}  // namespace shardlm
