// Request defaults (server/request_defaults.h): generation_config.json's sampling fields fill only
// what a request leaves out (absent or null); --generation-config vllm reads nothing; a directory
// is read; a bad file is a start-up error naming the file and field; --seed gives unseeded
// requests a sequence that depends only on the seed and their order.
#include <gtest/gtest.h>

#include <fstream>

#include "server/request_defaults.h"
#include "test_support.h"

namespace shardlm::server {
namespace {

using shardlm::testing::error_of;
using shardlm::testing::TempDir;

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(RequestDefaults, GenerationConfigFillsOnlyWhatIsLeftOut) {
  TempDir dir("gencfg");
  write(dir.path("generation_config.json"),
        R"({"do_sample": true, "temperature": 0.6, "top_p": 0.95, "top_k": 20,
            "eos_token_id": [1, 2], "max_new_tokens": 99})");
  const Json sampling = generation_config_defaults("auto", dir.path());
  EXPECT_EQ(sampling, Json::parse(R"({"temperature": 0.6, "top_p": 0.95, "top_k": 20})"));
  const RequestDefaults d(sampling, std::nullopt);
  Json body = Json::parse(R"({"prompt": "x", "temperature": 0, "top_p": null})");
  d.apply(body);
  EXPECT_EQ(body["temperature"], 0);  // the request's own value stays
  EXPECT_EQ(body["top_p"], 0.95);     // null counts as left out
  EXPECT_EQ(body["top_k"], 20);
  EXPECT_FALSE(body.contains("seed"));
  EXPECT_EQ(generation_config_defaults("vllm", dir.path()), Json::object());
  EXPECT_EQ(generation_config_defaults(dir.path(), "/nonexistent"), sampling);
  EXPECT_EQ(generation_config_defaults("auto", dir.path("generation_config.json")),
            Json::object());  // a file (a GGUF model) has no generation_config.json beside it
}

TEST(RequestDefaults, BadGenerationConfigsAreNamed) {
  TempDir dir("gencfg-bad");
  write(dir.path("generation_config.json"), R"({"top_p": 0})");
  std::string err = error_of([&] { generation_config_defaults("auto", dir.path()); });
  EXPECT_NE(err.find("generation_config.json"), std::string::npos) << err;
  EXPECT_NE(err.find("top_p"), std::string::npos) << err;
  EXPECT_NE(err.find("--generation-config vllm"), std::string::npos) << err;
  write(dir.path("generation_config.json"), "{not json");
  err = error_of([&] { generation_config_defaults("auto", dir.path()); });
  EXPECT_NE(err.find("not valid JSON"), std::string::npos) << err;
  err = error_of([&] { generation_config_defaults(dir.path("nothing-here"), ""); });
  EXPECT_NE(err.find("no generation_config.json there"), std::string::npos) << err;
}

std::vector<Json> seeds_of(const RequestDefaults& d, int n) {
  std::vector<Json> out;
  for (int i = 0; i < n; ++i) {
    Json body = {{"prompt", "x"}};
    d.apply(body);
    out.push_back(body["seed"]);
  }
  return out;
}

TEST(RequestDefaults, SeedGivesUnseededRequestsARepeatableSequence) {
  const RequestDefaults a(Json::object(), 7), b(Json::object(), 7), c(Json::object(), 8);
  const auto sa = seeds_of(a, 5), sb = seeds_of(b, 5), sc = seeds_of(c, 5);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  for (size_t i = 1; i < sa.size(); ++i) EXPECT_NE(sa[i], sa[i - 1]);
  Json seeded = {{"prompt", "x"}, {"seed", 3}};
  a.apply(seeded);
  EXPECT_EQ(seeded["seed"], 3);  // a request's own seed stays
}

}  // namespace
}  // namespace shardlm::server
