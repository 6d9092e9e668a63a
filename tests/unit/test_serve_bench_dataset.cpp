// bench serve's datasets (random, prefix, ShareGPT, JSON Lines) with a word tokenizer and with a
// tiny model's real tokenizer, and `bench offline --batch-sizes` on the tiny model.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "serve_bench/dataset.h"
#include "serve_bench/offline_benchmark.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::serve_bench {
namespace {

using shardlm::testing::TempDir;

// One id per space-separated word; ids 0..kVocab-1 are "w0".."w99".
class WordTokenizer : public PromptTokenizer {
 public:
  static constexpr int kVocab = 100;
  std::vector<int32_t> encode(const std::string& text) const override {
    std::vector<int32_t> ids;
    std::istringstream in(text);
    for (std::string w; in >> w;) ids.push_back(w[0] == 'w' ? std::stoi(w.substr(1)) : 0);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string text;
    for (int32_t id : ids) text += (text.empty() ? "w" : " w") + std::to_string(id);
    return text;
  }
  std::vector<int32_t> vocabulary() const override {
    std::vector<int32_t> v;
    for (int i = 0; i < kVocab; ++i) v.push_back(i);
    return v;
  }
};

DatasetOptions options(const std::string& name, int n = 20) {
  DatasetOptions o;
  o.name = name;
  o.num_prompts = n;
  o.input_len = 32;
  o.output_len = 8;
  o.seed = 5;
  return o;
}

TEST(ServeBenchDataset, RandomPromptsHaveExactLengthsAndDependOnTheSeed) {
  WordTokenizer tok;
  const auto a = make_dataset(options("random"), tok);
  ASSERT_EQ(a.size(), 20u);
  for (const SampleRequest& s : a) {
    EXPECT_EQ(s.prompt_ids.size(), 32u);
    EXPECT_EQ(s.prompt_len, 32);
    EXPECT_EQ(s.output_len, 8);
  }
  EXPECT_NE(a[0].prompt_ids, a[1].prompt_ids);
  EXPECT_EQ(make_dataset(options("random"), tok)[3].prompt_ids, a[3].prompt_ids);
  DatasetOptions other = options("random");
  other.seed = 6;
  EXPECT_NE(make_dataset(other, tok)[3].prompt_ids, a[3].prompt_ids);
}

TEST(ServeBenchDataset, RangeRatioAndTextPrompts) {
  WordTokenizer tok;
  DatasetOptions o = options("random", 200);
  o.range_ratio = 0.5;
  o.text_prompts = true;
  std::map<int, int> lengths;
  for (const SampleRequest& s : make_dataset(o, tok)) {
    EXPECT_TRUE(s.prompt_ids.empty());
    EXPECT_EQ(static_cast<int>(tok.encode(s.prompt).size()), s.prompt_len);
    EXPECT_GE(s.prompt_len, 16);
    EXPECT_LE(s.prompt_len, 48);
    EXPECT_GE(s.output_len, 4);
    EXPECT_LE(s.output_len, 12);
    ++lengths[s.prompt_len];
  }
  EXPECT_GT(lengths.size(), 10u);
}

TEST(ServeBenchDataset, PrefixGroupsShareTheirFirstTokens) {
  WordTokenizer tok;
  DatasetOptions o = options("prefix", 8);
  o.prefix_len = 50;
  o.num_prefixes = 2;
  const auto s = make_dataset(o, tok);
  auto head = [&](int i) {
    return std::vector<int32_t>(s[i].prompt_ids.begin(), s[i].prompt_ids.begin() + 50);
  };
  for (int i = 0; i < 8; ++i) EXPECT_EQ(s[i].prompt_len, 82);
  EXPECT_EQ(head(0), head(2));
  EXPECT_EQ(head(1), head(7));
  EXPECT_NE(head(0), head(1));
  EXPECT_NE(s[0].prompt_ids, s[2].prompt_ids);
}

TEST(ServeBenchDataset, ShareGptTakesTheFirstExchangeAndFiltersTinyOnes) {
  TempDir dir("serve_bench_ds");
  std::ofstream(dir.path("sg.json")) << R"([
    {"id": "a", "conversations": [{"from": "human", "value": "w1 w2 w3 w4 w5"},
                                  {"from": "gpt", "value": "w6 w7 w8 w9 w10 w11"}]},
    {"id": "b", "conversations": [{"from": "human", "value": "w1"}, {"from": "gpt", "value": "w2"}]},
    {"id": "c", "conversations": [{"from": "human", "value": "only one turn"}]},
    {"id": "d"}
  ])";
  WordTokenizer tok;
  DatasetOptions o = options("sharegpt", 3);
  o.path = dir.path("sg.json");
  o.output_len = 0;
  const auto s = make_dataset(o, tok);
  ASSERT_EQ(s.size(), 3u);  // the one usable exchange, reused
  EXPECT_EQ(s[0].prompt, "w1 w2 w3 w4 w5");
  EXPECT_EQ(s[0].prompt_len, 5);
  EXPECT_EQ(s[0].output_len, 6);
  o.output_len = 9;
  EXPECT_EQ(make_dataset(o, tok)[0].output_len, 9);
  std::ofstream(dir.path("bad.json")) << "{}";
  o.path = dir.path("bad.json");
  EXPECT_THROW(make_dataset(o, tok), Error);
}

TEST(ServeBenchDataset, JsonLinesPromptsWithOptionalLengths) {
  TempDir dir("serve_bench_ds");
  std::ofstream(dir.path("p.jsonl")) << "{\"prompt\": \"w1 w2\", \"output_len\": 5}\n\nw3 w4 w5\n"
                                     << "{\"prompt\": \"w6\", \"max_tokens\": 7}\n";
  WordTokenizer tok;
  DatasetOptions o = options("jsonl", 3);
  o.path = dir.path("p.jsonl");
  o.output_len = 0;
  const auto s = make_dataset(o, tok);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].prompt_len, 2);
  EXPECT_EQ(s[0].output_len, 5);
  EXPECT_EQ(s[1].prompt, "w3 w4 w5");
  EXPECT_EQ(s[1].output_len, 128);
  EXPECT_EQ(s[2].output_len, 7);
  std::ofstream(dir.path("bad.jsonl")) << "w1\n{\"text\": 1}\n";
  o.path = dir.path("bad.jsonl");
  try {
    make_dataset(o, tok);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  o.name = "jsonl";
  o.path = "";
  EXPECT_THROW(make_dataset(o, tok), Error);
  o.name = "nope";
  EXPECT_THROW(make_dataset(o, tok), Error);
}

class ServeBenchTinyModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("serve_bench_tiny");
    shardlm::testing::write_tiny_hf_model(dir_->path("m"), shardlm::testing::TinyModelSpec{});
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};

TempDir* ServeBenchTinyModel::dir_ = nullptr;

TEST_F(ServeBenchTinyModel, LocalTokenizerFitsTextToTheLength) {
  LocalTokenizer tok(dir_->path("m"));
  DatasetOptions o = options("random", 10);
  o.text_prompts = true;
  int exact = 0;
  for (const SampleRequest& s : make_dataset(o, tok)) {
    EXPECT_EQ(static_cast<int>(tok.encode(s.prompt).size()), s.prompt_len);
    exact += s.prompt_len == 32;
  }
  EXPECT_GE(exact, 8);
}

TEST_F(ServeBenchTinyModel, OfflineBenchmarkReportsEveryRequest) {
  OfflineBenchOptions o;
  o.model = dir_->path("m");
  o.threads = {1};
  o.batch_sizes = {1, 4};
  o.num_prompts = 4;
  o.input_len = 8;
  o.output_len = 5;
  const BenchReport report = run_offline_benchmark(o);
  ASSERT_EQ(report.runs.size(), 2u);
  EXPECT_EQ(report.benchmark, "offline");
  EXPECT_EQ(report.runs[1].setting["batch_size"], 4);
  for (const RunResult& run : report.runs) {
    EXPECT_EQ(run.metrics.completed, 4);
    EXPECT_EQ(run.metrics.input_tokens, 32);
    EXPECT_EQ(run.metrics.output_tokens, 20);
    EXPECT_GT(run.metrics.output_throughput, 0);
    for (const RequestRecord& r : run.requests) {
      EXPECT_GT(r.ttft, 0);
      EXPECT_LE(r.ttft, r.e2e);
    }
  }
}

}  // namespace
}  // namespace shardlm::serve_bench
