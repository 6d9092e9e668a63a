// The shardlm binary, driven the way a user drives it: generate, tokenize/detokenize, info, and
// clear one-line errors with exit status 1 for bad flags and files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

struct Result {
  int status;
  std::string out;
};

Result run(const std::string& args, bool merge_stderr = false) {
  const std::string cmd =
      std::string(SHARDLM_BINARY) + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { write_tiny_hf_model(dir_.path("m"), TinyModelSpec{}); }
  std::string model() const { return "--model " + dir_.path("m"); }
  TempDir dir_{"cli"};
};

TEST_F(Cli, GenerateIsDeterministicWithSeedAndGreedy) {
  const auto a = run("generate " + model() + " --prompt 'Hello' -n 8 --temperature 0");
  ASSERT_EQ(a.status, 0);
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(run("generate " + model() + " --prompt 'Hello' -n 8 --temperature 0").out, a.out);
  const auto s1 = run("generate " + model() + " --prompt 'Hi' -n 16 --temperature 1 --seed 7");
  const auto s2 = run("generate " + model() + " --prompt 'Hi' -n 16 --temperature 1 --seed 7");
  EXPECT_EQ(s1.out, s2.out);
  const auto stats = run("generate " + model() + " --prompt 'Hi' -n 4 --temperature 0", true);
  EXPECT_NE(stats.out.find("tok/s"), std::string::npos);
}

TEST_F(Cli, PromptsFileRunsABatchLikeSingleRuns) {
  std::ofstream(dir_.path("prompts.txt")) << "Hello\n\n{\"prompt\": \"Good morning\"}\nabc\n";
  const auto r = run("generate " + model() + " --prompts-file " + dir_.path("prompts.txt") +
                     " -n 6 --temperature 0 --ignore-eos");
  ASSERT_EQ(r.status, 0);
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::json> out;
  while (std::getline(lines, line)) out.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(out.size(), 3u);
  const char* prompts[] = {"Hello", "Good morning", "abc"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i]["index"], i);
    EXPECT_EQ(out[i]["finish_reason"], "length");
    EXPECT_EQ(out[i]["completion_tokens"], 6);
    const auto single = run("generate " + model() + " --prompt '" + prompts[i] +
                            "' -n 6 --temperature 0 --ignore-eos");
    EXPECT_EQ(out[i]["text"].get<std::string>(), single.out) << prompts[i];
  }
  std::ofstream(dir_.path("bad.jsonl")) << "{\"text\": 1}\n";
  const auto bad = run("generate " + model() + " --prompts-file " + dir_.path("bad.jsonl"), true);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("line 1"), std::string::npos) << bad.out;
}

TEST_F(Cli, TokenizeDetokenizeRoundTrip) {
  const auto t = run("tokenize " + model() + " --text 'héllo wörld'");
  ASSERT_EQ(t.status, 0);
  const auto ids = nlohmann::json::parse(t.out);
  ASSERT_TRUE(ids.is_array());
  const auto d = run("detokenize " + model() + " --ids '" + ids.dump() + "'");
  EXPECT_EQ(d.out, "héllo wörld");
}

TEST_F(Cli, InfoDescribesTheModel) {
  const auto r = run("info " + model());
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("architecture:   llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("BF16"), std::string::npos) << r.out;
}

TEST_F(Cli, BadInputGivesOneLineErrors) {
  auto r = run("generate --model /nonexistent/model.gguf --prompt x", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("does not exist"), std::string::npos) << r.out;
  r = run("generate " + model(), true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--prompt"), std::string::npos) << r.out;
  r = run("generate " + model() + " --prompt x --top-p 0", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("top_p"), std::string::npos) << r.out;
  r = run("detokenize " + model() + " --ids '[1, 99999]'", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("99999"), std::string::npos) << r.out;
  r = run("generate " + model() + " --prompt x --no-such-flag", true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("no-such-flag"), std::string::npos) << r.out;
  std::ofstream(dir_.path("bad.gguf")) << "GGUF\x03garbage";
  r = run("info --model " + dir_.path("bad.gguf"), true);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("bad.gguf"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace shardlm
