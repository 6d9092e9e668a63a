// Push delivery: a stream wakes its consumer when output arrives, and a StreamSet (the streams of
// one HTTP request) hands out whichever stream is ready, never holding a ready one behind a slow
// one. Deterministic: outputs are pushed only once the consumer is known to be blocked.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "engine/request_stream.h"
#include "stream_test_output.h"

namespace shardlm {
namespace {

using std::chrono::milliseconds;

using stream_test::kForever;
using stream_test::output;

// Spins until `n` threads wait on the signal (the consumer is inside StreamSet::next's wait).
void wait_for_waiters(const StreamSignal& signal, int n) {
  while (signal.waiters() < n) std::this_thread::yield();
}

TEST(StreamSet, ReadyStreamIsNotHeldBehindASlowOne) {
  StreamSet set;
  auto slow = std::make_shared<RequestStream>(7, set.signal());
  auto fast = std::make_shared<RequestStream>(8, set.signal());
  set.add(slow);
  set.add(fast);
  auto consumer = std::async(std::launch::async, [&] { return set.next(kForever); });
  wait_for_waiters(*set.signal(), 1);  // blocked with nothing ready anywhere
  const auto start = std::chrono::steady_clock::now();
  fast->push(output(8, "done", true));  // the second stream finishes; the first never speaks
  ASSERT_EQ(consumer.wait_for(kForever), std::future_status::ready);
  const auto event = consumer.get();
  // A consumer waiting on the first stream alone would time out here with nothing.
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->first, 1u);
  EXPECT_EQ(event->second.request_id, 8);
  EXPECT_EQ(event->second.text, "done");
  EXPECT_TRUE(event->second.finished());
  EXPECT_LT(std::chrono::steady_clock::now() - start, kForever / 2);
  EXPECT_TRUE(set[1].done());
  EXPECT_FALSE(set[0].done());
  EXPECT_FALSE(set.all_done());
}

TEST(StreamSet, EveryPushWakesTheConsumerInTurn) {
  StreamSet set;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int64_t id = 0; id < 3; ++id) {
    streams.push_back(std::make_shared<RequestStream>(id, set.signal()));
    set.add(streams.back());
  }
  for (size_t want : {2u, 0u, 1u}) {  // finish the streams last to first, then the others
    auto consumer = std::async(std::launch::async, [&] { return set.next(kForever); });
    wait_for_waiters(*set.signal(), 1);
    streams[want]->push(output(int64_t(want), "x", true));
    const auto event = consumer.get();
    ASSERT_TRUE(event.has_value());
    EXPECT_EQ(event->first, want);
  }
  EXPECT_TRUE(set.all_done());
  EXPECT_FALSE(set.next(milliseconds(0)).has_value());  // nothing left: returns at once
}

TEST(StreamSet, ReadyStreamsAreTakenInTurn) {
  StreamSet set;
  auto a = std::make_shared<RequestStream>(0, set.signal());
  auto b = std::make_shared<RequestStream>(1, set.signal());
  set.add(a);
  set.add(b);
  a->push(output(0, "a1", false));
  b->push(output(1, "b1", false));
  auto first = set.next(milliseconds(0));
  a->push(output(0, "a2", false));
  auto second = set.next(milliseconds(0));  // b, though a has output again
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->first, 0u);
  EXPECT_EQ(second->first, 1u);
  EXPECT_EQ(second->second.text, "b1");
  EXPECT_EQ(set.next(milliseconds(0))->second.text, "a2");
}

TEST(StreamSet, TimesOutWhenNothingComes) {
  StreamSet set;
  set.add(std::make_shared<RequestStream>(0, set.signal()));
  EXPECT_FALSE(set.next(milliseconds(1)).has_value());
}

TEST(RequestStream, PushWakesAWaitingNext) {
  auto signal = std::make_shared<StreamSignal>();
  RequestStream s(3, signal);
  auto consumer = std::async(std::launch::async, [&] { return s.next(kForever); });
  s.push(output(3, "hi", false));
  s.push(output(3, " there", true));
  std::string text;
  for (auto out = consumer.get(); out; out = s.try_next()) text += out->text;
  EXPECT_EQ(text, "hi there");
  EXPECT_TRUE(s.done());
  EXPECT_GE(signal->sequence(), 2u);
}

// An engine failure ends the stream with finish reason abort and the error; the final output keeps
// the totals already reported, so the response's usage counts the tokens the client was sent.
TEST(RequestStream, FailKeepsTheTokenTotalsAlreadySent) {
  RequestStream s(4);
  RequestOutput first = output(4, "ab", false);
  first.n_prompt_tokens = 5;
  first.n_output_tokens = 2;
  s.push(std::move(first));
  ASSERT_TRUE(s.try_next().has_value());
  RequestOutput second = output(4, "c", false);
  second.n_prompt_tokens = 5;
  second.n_output_tokens = 3;
  s.push(std::move(second));
  s.fail("the group broke");
  const auto out = s.try_next();  // the pending token merged with the abort
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->text, "c");
  EXPECT_EQ(out->finish_reason, RequestFinishReason::kAbort);
  EXPECT_EQ(out->n_prompt_tokens, 5);
  EXPECT_EQ(out->n_output_tokens, 3);
  EXPECT_EQ(s.error(), "the group broke");
  EXPECT_TRUE(s.done());
}

}  // namespace
}  // namespace shardlm
