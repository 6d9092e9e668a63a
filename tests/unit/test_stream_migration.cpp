// Mid-stream migration's event tracker (fleet/stream_migration.h): whole events only, token ids
// gathered and removed, the first stream's id and created kept after a restart, the end seen, an
// aborted stream cut.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fleet/stream_migration.h"

namespace shardlm::fleet {
namespace {

using Json = nlohmann::json;

std::string event(const std::string& id, int created, const std::string& text, Json ids,
                  Json finish = nullptr) {
  Json c{{"index", 0}, {"text", text}, {"finish_reason", finish}, {"token_ids", ids}};
  return "data: " + Json{{"id", id}, {"created", created}, {"choices", {c}}}.dump() + "\n\n";
}

Json payload(const std::string& sse) {
  return Json::parse(sse.substr(6, sse.size() - 8));
}

TEST(FleetStreamMigration, PassesWholeEventsAndGathersTokenIds) {
  MigrationTracker t(false);
  const std::string first = event("cmpl-a", 7, "Hel", {1, 2});
  EXPECT_EQ(t.feed(first.substr(0, 10)), "");  // not a whole event yet
  const std::string out = t.feed(first.substr(10) + event("cmpl-a", 7, "lo", {3}).substr(0, 20));
  EXPECT_EQ(payload(out)["choices"][0]["text"], "Hel");
  EXPECT_FALSE(payload(out)["choices"][0].contains("token_ids"));  // the client did not ask
  EXPECT_EQ(t.token_ids(), (std::vector<int32_t>{1, 2}));
  // the worker died mid-event: its bytes are dropped, the next worker's stream takes over
  t.restart();
  const std::string next =
      t.feed(event("cmpl-b", 9, "lo", {3}) + event("cmpl-b", 9, "!", {4}, "length"));
  const size_t split = next.find("\n\n") + 2;
  for (const std::string& e : {next.substr(0, split), next.substr(split)}) {
    EXPECT_EQ(payload(e)["id"], "cmpl-a");
    EXPECT_EQ(payload(e)["created"], 7);
  }
  EXPECT_EQ(t.token_ids(), (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_TRUE(t.finished());
  EXPECT_FALSE(t.done());
  EXPECT_EQ(t.feed("data: [DONE]\n\n"), "data: [DONE]\n\n");
  EXPECT_TRUE(t.done());
}

// A worker that stays up but ends the stream with finish_reason "abort" (its group broke): the
// abort event's tokens go on without the finish reason, its usage and [DONE] are held back, and
// the stream is cut (not done), so the pump moves it; the next worker's stream ends it.
TEST(FleetStreamMigration, AnAbortedStreamIsCutNotFinished) {
  MigrationTracker t(false);
  EXPECT_NE(t.feed(event("cmpl-a", 7, "Hel", {1, 2})), "");
  const std::string usage =
      "data: " + Json{{"id", "cmpl-a"}, {"choices", Json::array()}, {"usage", {{"a", 1}}}}.dump() +
      "\n\n";
  const std::string out =
      t.feed(event("cmpl-a", 7, "l", {3}, "abort") + usage + "data: [DONE]\n\n");
  EXPECT_EQ(payload(out)["choices"][0]["text"], "l");
  EXPECT_TRUE(payload(out)["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(out.find("usage"), std::string::npos);
  EXPECT_EQ(out.find("[DONE]"), std::string::npos);
  EXPECT_TRUE(t.aborted());
  EXPECT_FALSE(t.finished());
  EXPECT_FALSE(t.done());
  EXPECT_EQ(t.token_ids(), (std::vector<int32_t>{1, 2, 3}));
  // An abort event without tokens is held back whole.
  MigrationTracker u(false);
  EXPECT_EQ(u.feed(event("cmpl-c", 1, "", Json::array(), "abort")), "");
  EXPECT_TRUE(u.aborted());
  // The next worker's stream goes through and finishes.
  t.restart();
  EXPECT_FALSE(t.aborted());
  EXPECT_NE(t.feed(event("cmpl-b", 9, "lo", {4}, "length")), "");
  EXPECT_TRUE(t.finished());
  EXPECT_EQ(t.feed("data: [DONE]\n\n"), "data: [DONE]\n\n");
}

TEST(FleetStreamMigration, KeepsTokenIdsTheClientAskedForAndResumesWithThem) {
  MigrationTracker t(true);
  const std::string out = t.feed(event("x", 1, "a", {5}));
  EXPECT_EQ(payload(out)["choices"][0]["token_ids"], Json::array({5}));
  const Json body{{"prompt", "p"}, {"stream", true}};
  const Json resumed = resume_body(body, t.token_ids());
  EXPECT_EQ(resumed["resume_token_ids"], Json::array({5}));
  EXPECT_EQ(resumed["return_token_ids"], true);
  EXPECT_EQ(resumed["prompt"], "p");
}

TEST(FleetStreamMigration, OnlyOneChoiceStreamsMigrate) {
  EXPECT_TRUE(migratable_stream("/v1/completions", {{"prompt", "p"}, {"stream", true}}));
  EXPECT_TRUE(migratable_stream("/v1/completions", {{"prompt", {1, 2}}, {"stream", true}}));
  EXPECT_TRUE(migratable_stream("/v1/chat/completions",
                                {{"messages", Json::array()}, {"stream", true}, {"n", 1}}));
  EXPECT_FALSE(migratable_stream("/v1/completions", {{"prompt", "p"}}));
  EXPECT_FALSE(migratable_stream("/v1/completions", {{"prompt", {"a", "b"}}, {"stream", true}}));
  EXPECT_FALSE(migratable_stream("/v1/chat/completions", {{"stream", true}, {"n", 2}}));
  EXPECT_FALSE(migratable_stream("/tokenize", {{"stream", true}}));
}

}  // namespace
}  // namespace shardlm::fleet
